#include "actors/batching_actor.h"

#include <algorithm>
#include <thread>

#include "actors/batch_queue.h"
#include "actors/device_actor.h"

namespace pyflame_rt {
namespace {

struct BatchingState {
  std::shared_ptr<const BatchTarget> target;
  BatchOptions options;
  std::shared_ptr<BatcherCounters> counters;
  std::shared_ptr<BatchQueue> queue;  // shared with the exit hook that answers leftovers
  struct Device {
    caf::actor actor;
    BatchOfRequests in_flight;  // the batch it is running, if any
  };
  std::vector<Device> devices;       // BatchOptions.device_actors of them
  int threads_per_device = 0;        // intra-op thread cap of each (0: the session's own)
  bool timer_armed = false;
  uint64_t timer_generation = 0;
};

using BatchingActor = caf::stateful_actor<BatchingState>;

void fail_batch(BatchingState& st, const BatchOfRequests& batch, const Status& status) {
  for (const auto& r : *batch) {
    if (r->answered()) continue;
    r->fail(status);
    if (status.code() == StatusCode::kDeadlineExceeded) ++st.counters->deadline_exceeded;
    else ++st.counters->failed;
  }
}

void start_device(BatchingActor* self, size_t i) {
  auto& st = self->state;
  caf::actor device = spawn_device_actor(self->system(), st.target, st.counters, st.threads_per_device);
  self->monitor(device);  // the supervisor hears of its death (down handler)
  self->link_to(device);  // and the device dies with the batcher
  st.devices[i] = {device, nullptr};
}

void restart_device(BatchingActor* self, size_t i) {
  auto& st = self->state;
  ++st.counters->device_restarts;
  caf::actor old = st.devices[i].actor;
  self->demonitor(old);
  self->unlink_from(old);
  self->send_exit(old, caf::exit_reason::kill);
  start_device(self, i);
}

void maybe_dispatch(BatchingActor* self, bool timer_fired);

void arm_timer(BatchingActor* self, BatchClock::duration after) {
  auto& st = self->state;
  if (st.timer_armed) return;
  st.timer_armed = true;
  auto delay = std::max(std::chrono::duration_cast<std::chrono::microseconds>(after),
                        std::chrono::microseconds(1));
  self->delayed_send(self, delay, flush_atom::value, ++st.timer_generation);
}

// How many waiting requests to send now; 0 = keep waiting for more.
size_t batch_size_now(const BatchingState& st, bool timer_fired, BatchClock::duration waited,
                      BatchClock::duration timeout) {
  size_t waiting = st.queue->size();
  size_t max = static_cast<size_t>(st.options.max_batch_size);
  if (waiting >= max) return max;
  if (timer_fired || waited >= timeout) return waiting;
  size_t best = 0;
  for (int p : st.options.preferred_batch_sizes) {
    if (static_cast<size_t>(p) <= waiting) best = std::max(best, static_cast<size_t>(p));
  }
  return best;
}

void send_to_device(BatchingActor* self, size_t i, BatchOfRequests batch) {
  auto& st = self->state;
  st.devices[i].in_flight = batch;
  ++st.counters->batches;
  st.counters->batched_requests += batch->size();
  // No CAF timeout on this request: arming one wakes CAF's timer thread on every batch
  // (removing it took a batch-1 request from +47 to +35 us p50 over a direct run here).
  // Callers wait with their own deadline (Batcher::wait), and the device actor's death is the
  // down handler's business.
  self->request(st.devices[i].actor, caf::infinite, run_atom::value, batch)
      .then(
          [self, i](done_atom) {
            self->state.devices[i].in_flight = nullptr;
            maybe_dispatch(self, false);
          },
          [self, i, batch](caf::error& err) {
            auto& st = self->state;
            if (st.devices[i].in_flight != batch) return;  // the down handler already answered it
            st.devices[i].in_flight = nullptr;
            fail_batch(st, batch, make_status(StatusCode::kUnavailable, "model '", st.target->name(),
                                              "': device actor failed (", self->system().render(err),
                                              "); it was restarted, retry the request"));
            restart_device(self, i);
            maybe_dispatch(self, false);
          });
}

// An idle device actor's index, or devices.size() when all are busy.
size_t idle_device(const BatchingState& st) {
  size_t i = 0;
  while (i < st.devices.size() && st.devices[i].in_flight) ++i;
  return i;
}

void maybe_dispatch(BatchingActor* self, bool timer_fired) {
  auto& st = self->state;
  for (size_t i = idle_device(st); i < st.devices.size() && !st.queue->empty(); i = idle_device(st)) {
    auto now = BatchClock::now();
    auto timeout = std::chrono::duration_cast<BatchClock::duration>(
        std::chrono::duration<double, std::milli>(st.options.batch_timeout_ms));
    auto waited = now - st.queue->oldest();
    size_t n = batch_size_now(st, timer_fired, waited, timeout);
    if (n == 0) {
      arm_timer(self, timeout - waited);
      return;
    }
    auto batch = std::make_shared<std::vector<BatchRequestPtr>>();
    while (batch->size() < n && !st.queue->empty()) {
      BatchRequestPtr r = st.queue->pop();
      --st.counters->queued;
      if (r->answered()) continue;  // its caller gave up
      if (now > r->deadline) {
        r->fail(make_status(StatusCode::kDeadlineExceeded, "model '", st.target->name(),
                            "': request waited past its deadline in the batching queue (its timeout, "
                            "else request_timeout_ms=", st.options.request_timeout_ms, ")"));
        ++st.counters->deadline_exceeded;
        continue;
      }
      batch->push_back(std::move(r));
    }
    if (!batch->empty()) send_to_device(self, i, std::move(batch));
  }
}

caf::behavior batching_actor(BatchingActor* self, std::shared_ptr<const BatchTarget> target,
                             BatchOptions options, std::shared_ptr<BatcherCounters> counters) {
  auto& st = self->state;
  st.target = std::move(target);
  st.options = std::move(options);
  st.counters = std::move(counters);
  st.queue = std::make_shared<BatchQueue>();
  st.devices.resize(static_cast<size_t>(st.options.device_actors));
  // Several device actors share the cores: each runs its batches on its share of them.
  if (st.options.device_actors > 1) {
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    st.threads_per_device = std::max(1, static_cast<int>(cores) / st.options.device_actors);
  }
  for (size_t i = 0; i < st.devices.size(); ++i) start_device(self, i);
  // Supervisor: a dead device actor fails its batch and is replaced.
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    size_t i = 0;
    while (i < st.devices.size() && msg.source != st.devices[i].actor.address()) ++i;
    if (i == st.devices.size()) return;  // one already replaced
    if (st.devices[i].in_flight) {
      fail_batch(st, st.devices[i].in_flight,
                 make_status(StatusCode::kUnavailable, "model '", st.target->name(), "': device actor failed (",
                             self->system().render(msg.reason), "); it was restarted, retry the request"));
    }
    ++st.counters->device_restarts;
    start_device(self, i);
    maybe_dispatch(self, false);
  });
  // On exit (stop() or runtime shutdown): answer whatever still waits, stop the device.
  auto queue = st.queue;
  auto ctrs = st.counters;
  std::string name = st.target->name();
  self->set_exit_handler([self](caf::exit_msg& msg) {
    // Linked devices (the current one or one already replaced) are the down handler's
    // business; an exit sent to us (stop(), runtime shutdown: anon_send_exit names the
    // receiver as its source) ends the batcher.
    if (msg.source && msg.source != self->address()) return;
    self->quit(msg.reason);
  });
  self->attach_functor([queue, ctrs, name](const caf::error&) {
    for (auto& r : queue->drain()) {
      --ctrs->queued;
      r->fail(make_status(StatusCode::kUnavailable, "model '", name, "': the batcher was stopped before this request ran"));
    }
  });
  return {
      [self](enqueue_atom, BatchRequestPtr& r) {
        self->state.queue->push(std::move(r));
        maybe_dispatch(self, false);
      },
      [self](flush_atom, uint64_t generation) {
        auto& st = self->state;
        if (generation != st.timer_generation) return;
        st.timer_armed = false;
        maybe_dispatch(self, true);
      },
  };
}

}  // namespace

caf::actor spawn_batching_actor(caf::actor_system& system, std::shared_ptr<const BatchTarget> target,
                                BatchOptions options, std::shared_ptr<BatcherCounters> counters) {
  return system.spawn(batching_actor, std::move(target), std::move(options), std::move(counters));
}

}  // namespace pyflame_rt
