#include "actors/device_actor.h"

#include "actors/batch_runner.h"
#include "devices/thread_limit.h"

namespace pyflame_rt {
namespace {

// A kernel that throws may have left the partition in any state: answer the batch, then die
// so the supervisor (the batching actor) starts a fresh device actor.
caf::error fail_and_quit(caf::event_based_actor* self, const BatchTarget& target,
                         const std::vector<BatchRequestPtr>& batch, BatcherCounters& counters,
                         const std::string& what) {
  Status failed = make_status(StatusCode::kUnavailable, "model '", target.name(), "': device actor failed (",
                              what, "); it was restarted, retry the request");
  for (const auto& r : batch) {
    if (r->answered()) continue;
    r->fail(failed);
    ++counters.failed;
  }
  caf::error reason = caf::make_error(caf::sec::runtime_error, what);
  self->quit(reason);
  return reason;
}

caf::behavior device_actor(caf::event_based_actor* self, std::shared_ptr<const BatchTarget> target,
                           std::shared_ptr<BatcherCounters> counters, int threads) {
  return {
      [=](run_atom, const BatchOfRequests& batch) -> caf::result<done_atom> {
        IntraOpThreadLimit limit(threads);
        try {
          BatchRunReport report = run_requests(*target, *batch);
          counters->model_runs += report.model_runs;
          counters->failed += report.failed;
          return done_atom::value;
        } catch (const std::exception& e) {
          return fail_and_quit(self, *target, *batch, *counters, e.what());
        } catch (...) {
          return fail_and_quit(self, *target, *batch, *counters, "unknown exception");
        }
      },
  };
}

}  // namespace

caf::actor spawn_device_actor(caf::actor_system& system, std::shared_ptr<const BatchTarget> target,
                              std::shared_ptr<BatcherCounters> counters, int threads_per_device) {
  return system.spawn<caf::detached>(device_actor, std::move(target), std::move(counters), threads_per_device);
}

}  // namespace pyflame_rt
