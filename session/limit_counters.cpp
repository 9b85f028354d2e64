#include "session/limit_counters.h"

namespace pyflame_rt {

std::map<std::string, uint64_t> LimitCounters::snapshot() const {
  return {{"models_too_large", models_too_large.load()},
          {"runs_deadline_exceeded", runs_deadline_exceeded.load()},
          {"runs_memory_exceeded", runs_memory_exceeded.load()},
          {"runs_terminated", runs_terminated.load()},
          {"streams_idle_expired", streams_idle_expired.load()},
          {"streams_refused", streams_refused.load()}};
}

LimitCounters& process_limit_counters() {
  static LimitCounters counters;
  return counters;
}

void count_limit(LimitCounters* local, std::atomic<uint64_t> LimitCounters::*field) {
  if (local) (local->*field).fetch_add(1, std::memory_order_relaxed);
  (process_limit_counters().*field).fetch_add(1, std::memory_order_relaxed);
}

}  // namespace pyflame_rt
