// Counters a batcher's actors update and its stats() reads, lock-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace pyflame_rt {

struct BatcherCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> rejected_queue_full{0};
  std::atomic<uint64_t> rejected_invalid{0};
  std::atomic<uint64_t> deadline_exceeded{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> batched_requests{0};
  std::atomic<uint64_t> model_runs{0};
  std::atomic<uint64_t> device_restarts{0};
  std::atomic<int64_t> queued{0};
};

}  // namespace pyflame_rt
