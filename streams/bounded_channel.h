// BoundedChannel: a FIFO of envelopes between two pipeline stages, with a capacity and a
// policy for when it is full: block the producer, drop the oldest waiting frame, or drop the
// new one. A dropped frame leaves a marker in its place (markers take no capacity), so the
// consumers downstream still see every sequence number in order and nothing vanishes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "graph/status.h"
#include "streams/envelope.h"

namespace pyflame_rt {

enum class DropPolicy { kBlock, kDropOldest, kDropNewest };

Expected<DropPolicy> parse_drop_policy(const std::string& name);  // block, drop_oldest, drop_newest
const char* drop_policy_name(DropPolicy policy);

class BoundedChannel {
 public:
  BoundedChannel(std::string name, size_t capacity, DropPolicy policy)
      : name_(std::move(name)), capacity_(capacity), policy_(policy) {}

  enum class Push { kAccepted, kTimedOut, kClosed };
  // kClosed: the channel was closed (the envelope is not taken). With the block policy a
  // producer waits at most `max_block`; then the new frame is dropped (a counted marker) and
  // the result is kTimedOut. Drops by the other policies are kAccepted (as markers).
  Push push(Envelope e, std::chrono::milliseconds max_block = std::chrono::milliseconds::max());
  // Waits for the next envelope; false once closed and empty.
  bool pop(Envelope* e);
  enum class Wait { kItem, kTimeout, kClosed };
  // pop() that gives up after `timeout`.
  Wait pop_for(Envelope* e, std::chrono::milliseconds timeout);
  // Producers are done: pop() drains what is left, then returns false.
  void close();
  // Also discards what waits (shutdown); blocked producers and consumers return.
  void abort();

  const std::string& name() const { return name_; }
  size_t depth() const;
  size_t max_depth() const;
  uint64_t dropped() const;

 private:
  // Called with mu_ held after items_ or closed_ change.
  void publish_ready() { ready_.store(closed_ || !items_.empty(), std::memory_order_release); }
  // Watches ready_ for a few microseconds before a consumer sleeps: a stage that just
  // finished a frame often gets the next one that soon, and sleeping and being woken costs
  // more than the watch (see docs/architecture.md).
  void spin_until_ready() const;

  const std::string name_;
  const size_t capacity_;
  const DropPolicy policy_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Envelope> items_;
  size_t data_items_ = 0;  // items that are not drop markers
  size_t max_depth_ = 0;
  uint64_t dropped_ = 0;
  bool closed_ = false;
  std::atomic<bool> ready_{false};  // closed_ || !items_.empty(), readable without mu_
};

}  // namespace pyflame_rt
