#include "actors/compiler_actor.h"

#include <functional>
#include <mutex>

#include "actors/actor_messages.h"
#include "actors/actor_runtime.h"
#include "actors/spawn_function_actor.h"
#include "graph/model_loader.h"

namespace pyflame_rt {

// A unit of compiler work. `run` answers its caller; a job dropped unrun (the actor stopped
// at a runtime shutdown) answers through `abandon`, so no caller waits forever.
struct CompilerJob {
  std::function<void()> run;
  std::function<void()> abandon;
  bool started = false;
  ~CompilerJob() {
    if (!started) abandon();
  }
};
using CompilerJobPtr = std::shared_ptr<CompilerJob>;

}  // namespace pyflame_rt

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pyflame_rt::CompilerJobPtr)

namespace pyflame_rt {
namespace {

using compile_atom = caf::atom_constant<caf::atom("compile")>;

caf::behavior compiler_actor(caf::event_based_actor*) {
  return {[](compile_atom, const CompilerJobPtr& job) {
    job->started = true;
    job->run();
  }};
}

struct CompilerHandle {
  std::mutex mu;
  caf::actor actor;
  uint64_t owner = 0;
};

CompilerHandle& handle() {
  static CompilerHandle* h = new CompilerHandle;  // leaked: used from atexit shutdown
  return *h;
}

caf::actor compiler() {
  CompilerHandle& h = handle();
  std::lock_guard<std::mutex> lock(h.mu);
  if (!h.actor) {
    // Detached: a compile blocks for seconds and must not hold a scheduler worker.
    h.actor = spawn_function_actor<caf::detached>(actor_runtime(), compiler_actor);
    h.owner = register_actor_owner([] {
      CompilerHandle& h = handle();
      std::lock_guard<std::mutex> lock(h.mu);
      caf::anon_send_exit(h.actor, caf::exit_reason::user_shutdown);
      h.actor = nullptr;
    });
  }
  return h.actor;
}

// Runs `work` on the compiler actor; its result (or kUnavailable if never run) answers the future.
template <typename Result>
std::future<Result> on_compiler(std::function<Result()> work) {
  auto promise = std::make_shared<std::promise<Result>>();
  auto job = std::make_shared<CompilerJob>();
  job->run = [promise, work = std::move(work)] {
    try {
      promise->set_value(work());
    } catch (const std::exception& e) {
      promise->set_value(Result(make_status(StatusCode::kRuntimeError, "compiler job threw: ", e.what())));
    }
  };
  job->abandon = [promise] {
    promise->set_value(Result(Status(StatusCode::kUnavailable, "the compiler actor stopped before running this job")));
  };
  std::future<Result> future = promise->get_future();
  caf::anon_send(compiler(), compile_atom::value, std::move(job));
  return future;
}

}  // namespace

std::future<SessionResult> create_session_async(std::string model, bool from_bytes, SessionOptions options,
                                                std::vector<std::string> providers) {
  return on_compiler<SessionResult>([model = std::move(model), from_bytes, options = std::move(options),
                                     providers = std::move(providers)]() -> SessionResult {
    Expected<std::unique_ptr<InferenceSession>> created =
        from_bytes ? InferenceSession::create_from_bytes(model, options, providers)
                   : InferenceSession::create(model, options, providers);
    if (!created.ok()) return created.status();
    return std::shared_ptr<InferenceSession>(std::move(created).value());
  });
}

std::future<Expected<PartitionedModel>> partition_model_async(std::string model, bool from_bytes, int partitions,
                                                              SessionOptions options) {
  return on_compiler<Expected<PartitionedModel>>(
      [model = std::move(model), from_bytes, partitions, options = std::move(options)]() -> Expected<PartitionedModel> {
        ASSIGN_OR_RETURN(Graph graph, from_bytes ? load_model_bytes(model) : load_model_file(model));
        PartitionedModel out;
        ASSIGN_OR_RETURN(out.stages, partition_stages(std::move(graph), partitions, options, &out.partitions));
        return out;
      });
}

}  // namespace pyflame_rt
