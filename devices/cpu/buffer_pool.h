// BufferPool: where the CPU device's native ops get the buffers of their outputs. A buffer is
// shared (std::shared_ptr) by every CpuValue that refers to it: the copies execute_parallel
// makes, a conv output written in place into its residual; it goes back to the pool only when
// the last of them is gone, so reuse never depends on slot indices or on which value escapes.
//
// Why a pool rather than a planned arena (fixed offsets from a recorded first run): oneDNN
// chooses layouts (and so byte sizes) per input shape at run time, values written in place
// and execute_parallel's reordering of steps would each need a second plan, and a planned
// arena must be keyed by shape. A pool reuses by the same liveness (a buffer is free when its
// last reader released it) with none of that, and the cost of a lookup is a map search per
// output: small next to a convolution.
//
//   BufferPool pool(/*reuse=*/true);
//   { BufferPool::Scope scope(&pool); ... ops call CpuValue::allocate_native(...) ... }
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace pyflame_rt {
namespace cpu {

// Counts shared by the pools of one program (for tests and reports).
struct BufferPoolCounters {
  // Output buffers (acquire() without `what`).
  std::atomic<int64_t> fresh{0};        // buffers obtained from the system allocator
  std::atomic<int64_t> reused{0};       // buffers handed out again from a pool
  std::atomic<int64_t> fresh_bytes{0};  // bytes of the fresh ones
  // Other buffers (acquire() with `what`: oneDNN scratchpads), counted apart so that the counts
  // above stay those of the graph's values (whether a primitive wants a scratchpad depends on
  // the kernel oneDNN picks for the machine).
  std::atomic<int64_t> other_fresh{0};
  std::atomic<int64_t> other_reused{0};
};

class BufferPool {
 public:
  // reuse false: every buffer is a fresh allocation, freed when released (no reuse at all).
  explicit BufferPool(bool reuse, std::shared_ptr<BufferPoolCounters> counters = nullptr);
  ~BufferPool();  // frees the idle buffers; buffers still referenced are freed when released

  // A 64-byte aligned buffer of at least `bytes` (nullptr for 0 bytes): the smallest idle one
  // that fits, whatever its size (a CNN's tensors mostly shrink along the network: its big
  // early buffers then hold later small values instead of sitting idle); when none fits, a
  // fresh one, after the idle ones (all smaller) went back to the system. Measured on
  // MobileNetV2 (peak RSS, arena): 55 MB with a "fits if at most 2x" rule that kept idle
  // buffers, 49.5 MB with this one, 48.9 MB with plain oneDNN allocations. `what` names a
  // buffer that is not a value's ("a oneDNN scratchpad"): in the message if memory_limit_mb
  // refuses it (MemoryBudget::try_charge), and counted in other_fresh/other_reused.
  std::shared_ptr<void> acquire(size_t bytes, const char* what = nullptr);

  size_t idle_buffers() const;

  // Frees the idle buffers that no acquire took since the previous call: kept across runs
  // (the arena), a pool then holds what the last run used, not every shape ever run.
  void free_unused_since_last_run();

  // The pool of the run on this thread: set for the duration of a run by CpuProgram (on each
  // of its worker threads); nullptr outside runs, where outputs are plain oneDNN allocations.
  static BufferPool* current();
  class Scope {
   public:
    explicit Scope(BufferPool* pool);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    BufferPool* previous_;
  };

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with every buffer handed out: outlives the pool if needed
};

// Where each run of one program gets its pool, by the session's options:
// - reuse and arena (memory_pool "arena"): pools are kept across runs. A run borrows an idle
//   pool (a new one when every pool is in use by a concurrent run) and gives it back at its
//   end, so concurrent runs never share a pool and a steady state allocates nothing. Memory
//   held between runs: about one run's peak per run that was ever concurrent (buffers the
//   last run on a pool did not use are freed when it is given back).
// - reuse without arena ("default", "custom"): a new pool per run, reusing buffers within the
//   run and freeing them all at its end (nothing held between runs).
// - no reuse: a new non-reusing pool per run (every output its own allocation).
class RunPools {
 public:
  RunPools(bool reuse, bool arena) : reuse_(reuse), arena_(reuse && arena) {}

  // The pool of one run; back on the shelf (arena) or freed when the lease ends.
  class Lease {
   public:
    Lease(RunPools* owner, std::unique_ptr<BufferPool> pool) : owner_(owner), pool_(std::move(pool)) {}
    Lease(Lease&&) = default;
    ~Lease();
    BufferPool* get() const { return pool_.get(); }

   private:
    RunPools* owner_;
    std::unique_ptr<BufferPool> pool_;
  };
  Lease lease();

  const BufferPoolCounters& counters() const { return *counters_; }

 private:
  bool reuse_, arena_;
  std::shared_ptr<BufferPoolCounters> counters_ = std::make_shared<BufferPoolCounters>();
  std::mutex mu_;
  std::vector<std::unique_ptr<BufferPool>> shelf_;  // idle arena pools
};

}  // namespace cpu
}  // namespace pyflame_rt
