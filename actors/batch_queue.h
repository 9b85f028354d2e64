// The batching actor's waiting room: highest priority first, first come first served within
// a priority. Only the batching actor touches it (plus its exit hook, after it stopped).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "actors/batch_request.h"

namespace pyflame_rt {

class BatchQueue {
 public:
  void push(BatchRequestPtr r) {
    int p = r->priority;
    by_priority_[p].push_back(std::move(r));
    ++size_;
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // When the longest-waiting request arrived (the front of each priority level).
  BatchClock::time_point oldest() const {
    BatchClock::time_point t = BatchClock::time_point::max();
    for (const auto& [p, q] : by_priority_) t = std::min(t, q.front()->enqueued);
    return t;
  }
  BatchRequestPtr pop() {
    auto it = by_priority_.begin();
    BatchRequestPtr r = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) by_priority_.erase(it);
    --size_;
    return r;
  }
  std::vector<BatchRequestPtr> drain() {
    std::vector<BatchRequestPtr> all;
    while (!empty()) all.push_back(pop());
    return all;
  }

 private:
  std::map<int, std::deque<BatchRequestPtr>, std::greater<int>> by_priority_;
  size_t size_ = 0;
};

}  // namespace pyflame_rt
