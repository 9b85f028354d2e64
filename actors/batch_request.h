// One request waiting in a batcher: its feed, priority, deadline and the promise its caller
// waits on. The first answer wins, so a supervisor failing a batch and a caller giving up at
// its deadline can never answer twice.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/status.h"
#include "graph/tensor.h"

namespace pyflame_rt {

using BatchClock = std::chrono::steady_clock;
using BatchResult = Expected<std::vector<Tensor>>;

// When a request waited and ran, for the caller's metrics (queue time = started - enqueued,
// compute time = finished - started). batch_size = requests in the model run that answered it;
// batch_index = its place there, so one observer per run can count the run once.
struct BatchTiming {
  BatchClock::time_point enqueued;
  BatchClock::time_point started;   // == enqueued when it never ran (rejected, dropped)
  BatchClock::time_point finished;
  int batch_size = 0;
  int batch_index = 0;
};
// Called exactly once, on whichever thread answers (a device actor, the batching actor or the
// submitting thread for an immediate rejection): it must only hand the result on, not compute.
using BatchCallback = std::function<void(BatchResult, const BatchTiming&)>;

class BatchRequest {
 public:
  BatchRequest(std::map<std::string, Tensor> feeds, std::vector<size_t> wanted, int priority,
               BatchClock::time_point deadline)
      : feeds(std::move(feeds)), wanted(std::move(wanted)), priority(priority),
        enqueued(BatchClock::now()), deadline(deadline), started_(enqueued) {}
  BatchRequest(std::map<std::string, Tensor> feeds, std::vector<size_t> wanted, int priority,
               BatchClock::time_point deadline, BatchCallback callback)
      : BatchRequest(std::move(feeds), std::move(wanted), priority, deadline) {
    callback_ = std::move(callback);
  }

  // A request dropped unanswered (an actor died with it) still answers its caller.
  ~BatchRequest() {
    if (!answered_.load()) {
      fail(Status(StatusCode::kUnavailable, "the request was dropped before it ran (its actor stopped)"));
    }
  }
  BatchRequest(const BatchRequest&) = delete;
  BatchRequest& operator=(const BatchRequest&) = delete;

  // Outputs are every model output; `wanted` picks the caller's ones (empty = all).
  void answer(Expected<std::vector<Tensor>> all_outputs) {
    if (answered_.exchange(true)) return;
    if (all_outputs.ok() && !wanted.empty()) {
      std::vector<Tensor> picked;
      for (size_t i : wanted) picked.push_back(all_outputs.value()[i]);
      deliver(std::move(picked));
      return;
    }
    deliver(std::move(all_outputs));
  }
  // Set by the runner just before the model run that answers this request.
  void mark_started(int batch_size, int batch_index) {
    started_ = BatchClock::now();
    batch_size_ = batch_size;
    batch_index_ = batch_index;
  }
  void fail(Status status) { answer(Expected<std::vector<Tensor>>(std::move(status))); }
  bool answered() const { return answered_.load(); }
  std::future<BatchResult> future() { return promise_.get_future(); }

  // Dim 0 of the first input: the rows this request adds to a batch.
  int64_t rows() const {
    const Tensor& t = feeds.begin()->second;
    return t.rank() ? t.dim(0) : 1;
  }

  const std::map<std::string, Tensor> feeds;
  const std::vector<size_t> wanted;
  const int priority;
  const BatchClock::time_point enqueued;
  const BatchClock::time_point deadline;

 private:
  void deliver(BatchResult result) {
    if (!callback_) {
      promise_.set_value(std::move(result));
      return;
    }
    BatchTiming timing{enqueued, started_, BatchClock::now(), batch_size_, batch_index_};
    BatchCallback callback = std::move(callback_);  // its captures are released after the call
    callback_ = nullptr;
    callback(std::move(result), timing);
  }

  std::promise<BatchResult> promise_;
  BatchCallback callback_;
  BatchClock::time_point started_;
  int batch_size_ = 0;
  int batch_index_ = 0;
  std::atomic<bool> answered_{false};
};

using BatchRequestPtr = std::shared_ptr<BatchRequest>;
using BatchOfRequests = std::shared_ptr<std::vector<BatchRequestPtr>>;

}  // namespace pyflame_rt
