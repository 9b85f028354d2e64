#include "actors/batcher.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "actors/actor_messages.h"
#include "actors/actor_runtime.h"
#include "actors/batching_actor.h"

namespace pyflame_rt {
Status BatchOptions::validate() const {
  if (max_batch_size < 1) {
    return invalid_argument("BatchOptions.max_batch_size: expected >= 1, got ", max_batch_size);
  }
  if (!(batch_timeout_ms >= 0)) {
    return invalid_argument("BatchOptions.batch_timeout_ms: expected >= 0, got ", batch_timeout_ms);
  }
  for (int p : preferred_batch_sizes) {
    if (p < 1 || p > max_batch_size) {
      return invalid_argument("BatchOptions.preferred_batch_sizes: expected sizes in [1, max_batch_size=",
                              max_batch_size, "], got ", p);
    }
  }
  if (max_queue_size < 1) {
    return invalid_argument("BatchOptions.max_queue_size: expected >= 1, got ", max_queue_size);
  }
  if (device_actors < 1 || device_actors > 64) {
    return invalid_argument("BatchOptions.device_actors: expected 1..64, got ", device_actors);
  }
  if (request_timeout_ms < 1) {
    return invalid_argument("BatchOptions.request_timeout_ms: expected >= 1, got ", request_timeout_ms);
  }
  return Status::OK();
}

struct Batcher::Impl {
  std::shared_ptr<const BatchTarget> target;
  BatchOptions options;
  std::shared_ptr<BatcherCounters> counters = std::make_shared<BatcherCounters>();
  std::mutex mu;       // guards actor and stopped
  caf::actor actor;
  bool stopped = false;
  uint64_t owner = 0;  // registration with the actor runtime's shutdown

  void stop() {
    std::lock_guard<std::mutex> lock(mu);
    if (stopped) return;
    stopped = true;
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    actor = nullptr;
  }
};

Batcher::Batcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Batcher::~Batcher() {
  unregister_actor_owner(impl_->owner);
  impl_->stop();
}

Expected<std::shared_ptr<Batcher>> Batcher::create(std::shared_ptr<const BatchTarget> target,
                                                   BatchOptions options) {
  RETURN_IF_ERROR(options.validate());
  auto impl = std::make_unique<Impl>();
  impl->target = std::move(target);
  impl->options = std::move(options);
  impl->actor = spawn_batching_actor(actor_runtime(), impl->target, impl->options, impl->counters);
  Impl* raw = impl.get();
  impl->owner = register_actor_owner([raw] { raw->stop(); });
  return std::shared_ptr<Batcher>(new Batcher(std::move(impl)));
}

std::future<BatchResult> Batcher::submit(std::map<std::string, Tensor> feeds,
                                         const std::vector<std::string>& output_names, int priority) {
  auto promise = std::make_shared<std::promise<BatchResult>>();
  std::future<BatchResult> future = promise->get_future();
  submit(std::move(feeds), output_names, priority,
         [promise](BatchResult result, const BatchTiming&) { promise->set_value(std::move(result)); });
  return future;
}

void Batcher::submit(std::map<std::string, Tensor> feeds, const std::vector<std::string>& output_names,
                     int priority, BatchCallback done, int64_t timeout_us) {
  Impl& im = *impl_;
  const std::string& model = im.target->name();
  auto reject = [&done](Status status) {
    auto now = BatchClock::now();
    done(BatchResult(std::move(status)), BatchTiming{now, now, now, 0, 0});
  };
  std::vector<size_t> wanted;
  const auto& known = im.target->output_names();
  for (const auto& name : output_names) {
    auto it = std::find(known.begin(), known.end(), name);
    if (it == known.end()) {
      return reject(invalid_argument("model '", model, "': unknown output name '", name, "'"));
    }
    wanted.push_back(static_cast<size_t>(it - known.begin()));
  }
  if (Status st = im.target->validate(feeds); !st.ok()) {
    ++im.counters->rejected_invalid;
    return reject(st.with_context("model '" + model + "': "));
  }
  if (im.counters->queued.fetch_add(1) >= im.options.max_queue_size) {
    --im.counters->queued;
    ++im.counters->rejected_queue_full;
    return reject(make_status(StatusCode::kResourceExhausted, "model '", model, "': batching queue full (",
                              im.options.max_queue_size, " requests waiting, max_queue_size=",
                              im.options.max_queue_size, "); retry later or raise max_queue_size"));
  }
  auto wait = timeout_us > 0 ? std::chrono::microseconds(timeout_us)
                             : std::chrono::microseconds(im.options.request_timeout_ms * 1000);
  auto request = std::make_shared<BatchRequest>(std::move(feeds), std::move(wanted), priority,
                                                BatchClock::now() + wait, std::move(done));
  std::unique_lock<std::mutex> lock(im.mu);
  if (im.stopped) {
    lock.unlock();
    --im.counters->queued;
    request->fail(make_status(StatusCode::kUnavailable, "model '", model, "': the batcher is stopped"));
    return;
  }
  ++im.counters->requests;
  caf::anon_send(im.actor, enqueue_atom::value, std::move(request));
}

BatchResult Batcher::wait(std::future<BatchResult>& future) const {
  // Watch briefly before sleeping (as BoundedChannel does): a small model answers within
  // microseconds, sooner than a sleeping thread is woken.
  auto watch_until = std::chrono::steady_clock::now() + std::chrono::microseconds(30);
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < watch_until) {
    std::this_thread::yield();
  }
  auto limit = std::chrono::milliseconds(impl_->options.request_timeout_ms);
  if (future.wait_for(limit) != std::future_status::ready) {
    ++impl_->counters->deadline_exceeded;
    return make_status(StatusCode::kDeadlineExceeded, "model '", impl_->target->name(),
                       "': no answer within request_timeout_ms=", impl_->options.request_timeout_ms);
  }
  return future.get();
}

BatchResult Batcher::run(std::map<std::string, Tensor> feeds, const std::vector<std::string>& output_names,
                         int priority) {
  std::future<BatchResult> f = submit(std::move(feeds), output_names, priority);
  return wait(f);
}

BatchStats Batcher::stats() const {
  const BatcherCounters& c = *impl_->counters;
  BatchStats s;
  s.requests = c.requests;
  s.rejected_queue_full = c.rejected_queue_full;
  s.rejected_invalid = c.rejected_invalid;
  s.deadline_exceeded = c.deadline_exceeded;
  s.failed = c.failed;
  s.batches = c.batches;
  s.batched_requests = c.batched_requests;
  s.model_runs = c.model_runs;
  s.device_restarts = c.device_restarts;
  s.queued = c.queued;
  return s;
}

const BatchOptions& Batcher::options() const { return impl_->options; }
const std::string& Batcher::model_name() const { return impl_->target->name(); }
void Batcher::stop() { impl_->stop(); }

}  // namespace pyflame_rt
