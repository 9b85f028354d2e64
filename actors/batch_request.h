// One request waiting in a batcher: its feed, priority, deadline and the promise its caller
// waits on. The first answer wins, so a supervisor failing a batch and a caller giving up at
// its deadline can never answer twice.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
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

class BatchRequest {
 public:
  BatchRequest(std::map<std::string, Tensor> feeds, std::vector<size_t> wanted, int priority,
               BatchClock::time_point deadline)
      : feeds(std::move(feeds)), wanted(std::move(wanted)), priority(priority),
        enqueued(BatchClock::now()), deadline(deadline) {}

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
      promise_.set_value(std::move(picked));
      return;
    }
    promise_.set_value(std::move(all_outputs));
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
  std::promise<BatchResult> promise_;
  std::atomic<bool> answered_{false};
};

using BatchRequestPtr = std::shared_ptr<BatchRequest>;
using BatchOfRequests = std::shared_ptr<std::vector<BatchRequestPtr>>;

}  // namespace pyflame_rt
