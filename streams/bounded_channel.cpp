#include "streams/bounded_channel.h"

#include <algorithm>
#include <thread>

namespace pyflame_rt {

Expected<DropPolicy> parse_drop_policy(const std::string& name) {
  if (name == "block") return DropPolicy::kBlock;
  if (name == "drop_oldest") return DropPolicy::kDropOldest;
  if (name == "drop_newest") return DropPolicy::kDropNewest;
  return invalid_argument("channel policy: expected 'block', 'drop_oldest' or 'drop_newest', got '", name, "'");
}

const char* drop_policy_name(DropPolicy policy) {
  switch (policy) {
    case DropPolicy::kBlock: return "block";
    case DropPolicy::kDropOldest: return "drop_oldest";
    case DropPolicy::kDropNewest: return "drop_newest";
  }
  return "?";
}

namespace {
void make_marker(Envelope& e, const std::string& where) {
  e.frame.clear();
  e.dropped_at = where;
}
}  // namespace

BoundedChannel::Push BoundedChannel::push(Envelope e, std::chrono::milliseconds max_block) {
  std::unique_lock<std::mutex> lock(mu_);
  bool is_data = !e.dropped() && e.status.ok();
  bool dropped_new = false;
  if (is_data && data_items_ >= capacity_) {
    auto has_room = [&] { return closed_ || data_items_ < capacity_; };
    if (policy_ == DropPolicy::kBlock) {
      if (max_block == std::chrono::milliseconds::max()) not_full_.wait(lock, has_room);
      else dropped_new = !not_full_.wait_for(lock, max_block, has_room);
    } else if (policy_ == DropPolicy::kDropNewest) {
      dropped_new = true;
    } else {
      auto oldest = std::find_if(items_.begin(), items_.end(),
                                 [](const Envelope& x) { return !x.dropped() && x.status.ok(); });
      make_marker(*oldest, name_);
      --data_items_;
      ++dropped_;
    }
  }
  if (closed_) return Push::kClosed;
  if (dropped_new) {
    make_marker(e, name_);
    is_data = false;
    ++dropped_;
  }
  items_.push_back(std::move(e));
  if (is_data) ++data_items_;
  max_depth_ = std::max(max_depth_, data_items_);
  publish_ready();
  not_empty_.notify_one();
  return dropped_new && policy_ == DropPolicy::kBlock ? Push::kTimedOut : Push::kAccepted;
}

void BoundedChannel::spin_until_ready() const {
  constexpr auto kSpin = std::chrono::microseconds(30);
  auto until = std::chrono::steady_clock::now() + kSpin;
  // Yielding, not pausing: a runnable thread (the producer, on a busy machine) gets the
  // core, so the watch only burns time nobody else wants.
  while (!ready_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
}

bool BoundedChannel::pop(Envelope* e) {
  spin_until_ready();
  std::unique_lock<std::mutex> lock(mu_);
  not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
  if (items_.empty()) return false;
  *e = std::move(items_.front());
  items_.pop_front();
  publish_ready();
  if (!e->dropped() && e->status.ok()) --data_items_;
  not_full_.notify_one();
  return true;
}

BoundedChannel::Wait BoundedChannel::pop_for(Envelope* e, std::chrono::milliseconds timeout) {
  if (timeout.count() > 0) spin_until_ready();
  std::unique_lock<std::mutex> lock(mu_);
  if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); })) return Wait::kTimeout;
  if (items_.empty()) return Wait::kClosed;
  *e = std::move(items_.front());
  items_.pop_front();
  publish_ready();
  if (!e->dropped() && e->status.ok()) --data_items_;
  not_full_.notify_one();
  return Wait::kItem;
}

void BoundedChannel::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  publish_ready();
  not_empty_.notify_all();
  not_full_.notify_all();
}

void BoundedChannel::abort() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  items_.clear();
  data_items_ = 0;
  publish_ready();
  not_empty_.notify_all();
  not_full_.notify_all();
}

size_t BoundedChannel::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_items_;
}
size_t BoundedChannel::max_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_depth_;
}
uint64_t BoundedChannel::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

}  // namespace pyflame_rt
