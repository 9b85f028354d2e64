#include "session/stream_reaper.h"

#include <algorithm>

#include "session/stream.h"

namespace pyflame_rt {

StreamReaper& StreamReaper::global() {
  static StreamReaper* reaper = new StreamReaper();
  return *reaper;
}

void StreamReaper::add(Stream* stream, std::chrono::milliseconds idle_timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_[stream] = idle_timeout;
  if (!started_) {
    started_ = true;
    std::thread([this] { loop(); }).detach();
  }
  cv_.notify_all();  // a shorter timeout than the current period
}

void StreamReaper::remove(Stream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(stream);
}

void StreamReaper::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    std::chrono::milliseconds period(250);
    for (const auto& [stream, timeout] : streams_) period = std::min(period, std::max(timeout / 4, std::chrono::milliseconds(5)));
    if (streams_.empty()) {
      cv_.wait(lock, [this] { return !streams_.empty(); });
      continue;
    }
    cv_.wait_for(lock, period);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = streams_.begin(); it != streams_.end();) {
      // A freed stream stays a Stream object (its owner still holds it) but needs no more visits.
      it = it->first->expire_if_idle(now) ? streams_.erase(it) : std::next(it);
    }
  }
}

}  // namespace pyflame_rt
