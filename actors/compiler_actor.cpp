#include "actors/compiler_actor.h"

#include <mutex>

#include "actors/actor_messages.h"
#include "actors/actor_runtime.h"

namespace pyflame_rt {

struct CompileJob {
  std::string model;
  bool from_bytes = false;
  SessionOptions options;
  std::vector<std::string> providers;
  std::promise<SessionResult> promise;
  bool answered = false;

  void answer(SessionResult r) {
    answered = true;
    promise.set_value(std::move(r));
  }
  // A job dropped with the actor (runtime shutdown) still answers its caller.
  ~CompileJob() {
    if (!answered) answer(Status(StatusCode::kUnavailable, "the compiler actor stopped before compiling this model"));
  }
};
using CompileJobPtr = std::shared_ptr<CompileJob>;

}  // namespace pyflame_rt

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pyflame_rt::CompileJobPtr)

namespace pyflame_rt {
namespace {

using compile_atom = caf::atom_constant<caf::atom("compile")>;

caf::behavior compiler_actor(caf::event_based_actor*) {
  return {[](compile_atom, const CompileJobPtr& job) {
    Expected<std::unique_ptr<InferenceSession>> created =
        job->from_bytes ? InferenceSession::create_from_bytes(job->model, job->options, job->providers)
                        : InferenceSession::create(job->model, job->options, job->providers);
    if (!created.ok()) job->answer(SessionResult(created.status()));
    else job->answer(SessionResult(std::shared_ptr<InferenceSession>(std::move(created).value())));
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
    h.actor = actor_runtime().spawn<caf::detached>(compiler_actor);
    h.owner = register_actor_owner([] {
      CompilerHandle& h = handle();
      std::lock_guard<std::mutex> lock(h.mu);
      caf::anon_send_exit(h.actor, caf::exit_reason::user_shutdown);
      h.actor = nullptr;
    });
  }
  return h.actor;
}

}  // namespace

std::future<SessionResult> create_session_async(std::string model, bool from_bytes, SessionOptions options,
                                                std::vector<std::string> providers) {
  auto job = std::make_shared<CompileJob>();
  job->model = std::move(model);
  job->from_bytes = from_bytes;
  job->options = std::move(options);
  job->providers = std::move(providers);
  std::future<SessionResult> future = job->promise.get_future();
  caf::anon_send(compiler(), compile_atom::value, std::move(job));
  return future;
}

}  // namespace pyflame_rt
