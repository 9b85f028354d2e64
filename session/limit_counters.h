// LimitCounters: how often each limit of a session or stream stopped something (issue 14:
// every limit is a clear error and a metric). A session keeps its own (runs) and the process
// keeps the sum, with what no session exists for (a model refused for its size).
//
//   for (auto& [name, n] : session->limit_counters()) std::cout << name << " " << n;
//   process_limit_counters().snapshot()["models_too_large"];
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

namespace pyflame_rt {

struct LimitCounters {
  std::atomic<uint64_t> models_too_large{0};        // SessionOptions.max_model_size_mb
  std::atomic<uint64_t> runs_deadline_exceeded{0};  // RunOptions.timeout_ms
  std::atomic<uint64_t> runs_memory_exceeded{0};    // SessionOptions.memory_limit_mb at run time
  std::atomic<uint64_t> runs_terminated{0};         // RunOptions.terminate
  std::atomic<uint64_t> streams_idle_expired{0};    // StreamOptions.idle_timeout_ms
  std::atomic<uint64_t> streams_refused{0};         // SessionOptions.max_streams

  std::map<std::string, uint64_t> snapshot() const;
};

// The whole process's counts (every session's, plus refusals before a session exists).
LimitCounters& process_limit_counters();

// Adds one to `field` of `local` (when given) and of the process's counters.
void count_limit(LimitCounters* local, std::atomic<uint64_t> LimitCounters::*field);

}  // namespace pyflame_rt
