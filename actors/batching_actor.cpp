#include "actors/batching_actor.h"

#include <algorithm>

#include "actors/batch_queue.h"
#include "actors/device_actor.h"

namespace pyflame_rt {
namespace {

struct BatchingState {
  std::shared_ptr<const BatchTarget> target;
  BatchOptions options;
  std::shared_ptr<BatcherCounters> counters;
  std::shared_ptr<BatchQueue> queue;  // shared with the exit hook that answers leftovers
  caf::actor device;
  BatchOfRequests in_flight;          // the batch the device actor is running, if any
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

void start_device(BatchingActor* self) {
  auto& st = self->state;
  st.device = spawn_device_actor(self->system(), st.target, st.counters);
  self->monitor(st.device);  // the supervisor hears of its death (down handler)
  self->link_to(st.device);  // and the device dies with the batcher
}

void restart_device(BatchingActor* self) {
  auto& st = self->state;
  ++st.counters->device_restarts;
  self->demonitor(st.device);
  self->unlink_from(st.device);
  self->send_exit(st.device, caf::exit_reason::kill);
  start_device(self);
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

void send_to_device(BatchingActor* self, BatchOfRequests batch) {
  auto& st = self->state;
  st.in_flight = batch;
  ++st.counters->batches;
  st.counters->batched_requests += batch->size();
  auto deadline = std::chrono::milliseconds(st.options.request_timeout_ms);
  self->request(st.device, deadline, run_atom::value, batch)
      .then(
          [self](done_atom) {
            self->state.in_flight = nullptr;
            maybe_dispatch(self, false);
          },
          [self, batch](caf::error& err) {
            auto& st = self->state;
            if (st.in_flight != batch) return;  // the down handler already answered it
            st.in_flight = nullptr;
            if (err == caf::sec::request_timeout) {
              fail_batch(st, batch, make_status(StatusCode::kDeadlineExceeded, "model '", st.target->name(),
                                                "': the batch did not finish within request_timeout_ms=",
                                                st.options.request_timeout_ms));
            } else {
              fail_batch(st, batch, make_status(StatusCode::kUnavailable, "model '", st.target->name(),
                                                "': device actor failed (", self->system().render(err),
                                                "); it was restarted, retry the request"));
              restart_device(self);
            }
            maybe_dispatch(self, false);
          });
}

void maybe_dispatch(BatchingActor* self, bool timer_fired) {
  auto& st = self->state;
  while (!st.in_flight && !st.queue->empty()) {
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
                            "': request waited past its deadline (request_timeout_ms=",
                            st.options.request_timeout_ms, ") in the batching queue"));
        ++st.counters->deadline_exceeded;
        continue;
      }
      batch->push_back(std::move(r));
    }
    if (!batch->empty()) send_to_device(self, std::move(batch));
  }
}

caf::behavior batching_actor(BatchingActor* self, std::shared_ptr<const BatchTarget> target,
                             BatchOptions options, std::shared_ptr<BatcherCounters> counters) {
  auto& st = self->state;
  st.target = std::move(target);
  st.options = std::move(options);
  st.counters = std::move(counters);
  st.queue = std::make_shared<BatchQueue>();
  start_device(self);
  // Supervisor: a dead device actor fails its batch and is replaced.
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (msg.source != st.device.address()) return;
    if (st.in_flight) {
      fail_batch(st, st.in_flight, make_status(StatusCode::kUnavailable, "model '", st.target->name(),
                                               "': device actor failed (", self->system().render(msg.reason),
                                               "); it was restarted, retry the request"));
      st.in_flight = nullptr;
    }
    ++st.counters->device_restarts;
    start_device(self);
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
