#include "devices/cpu/buffer_pool.h"

#include <cstdlib>
#include <map>
#include <new>

#include "graph/memory_budget.h"

namespace pyflame_rt {
namespace cpu {

namespace {
constexpr size_t kAlignment = 64;  // oneDNN's preferred alignment (a cache line, AVX-512)
thread_local BufferPool* t_current = nullptr;
}  // namespace

struct BufferPool::State {
  bool reuse;
  std::shared_ptr<BufferPoolCounters> counters;
  std::mutex mu;
  struct Idle {
    void* p;
    uint64_t run;  // `run` when it was last given back
  };
  std::multimap<size_t, Idle> idle;  // capacity -> buffer
  uint64_t run = 0;                  // counts free_unused_since_last_run calls

  ~State() {
    for (auto& kv : idle) std::free(kv.second.p);
  }
  // Called by the last owner of a buffer, on whichever thread that is.
  void give_back(void* p, size_t capacity) {
    if (!reuse) {
      std::free(p);
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    idle.emplace(capacity, Idle{p, run});
  }
};

BufferPool::BufferPool(bool reuse, std::shared_ptr<BufferPoolCounters> counters) : state_(std::make_shared<State>()) {
  state_->reuse = reuse;
  state_->counters = counters ? std::move(counters) : std::make_shared<BufferPoolCounters>();
}

BufferPool::~BufferPool() = default;

std::shared_ptr<void> BufferPool::acquire(size_t bytes, const char* what) {
  if (bytes == 0) return nullptr;
  size_t capacity = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = nullptr;
  if (state_->reuse) {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->idle.lower_bound(capacity);
    if (it != state_->idle.end()) {
      capacity = it->first;
      p = it->second.p;
      state_->idle.erase(it);
    } else {
      // Nothing idle is big enough: the smaller idle buffers go back to the system first, so
      // malloc can coalesce them into this one rather than the pool holding both.
      for (auto& kv : state_->idle) std::free(kv.second.p);
      state_->idle.clear();
    }
  }
  // A run under memory_limit_mb counts what it holds: a buffer, reused or fresh, is charged
  // while the run holds it (the pool's idle buffers are not the run's). Past the limit the
  // buffer goes back and the run fails (bad_alloc -> kResourceExhausted, the budget's message).
  std::shared_ptr<MemoryBudget> budget;
  try {
    budget = charge_current_budget(capacity, what);
  } catch (const std::bad_alloc&) {
    if (p) state_->give_back(p, capacity);
    throw;
  }
  BufferPoolCounters& counters = *state_->counters;
  if (p) {
    ++(what ? counters.other_reused : counters.reused);
  } else {
    p = std::aligned_alloc(kAlignment, capacity);
    if (!p) {
      if (budget) budget->release(capacity);
      throw std::bad_alloc();
    }
    if (what) {
      ++counters.other_fresh;
    } else {
      ++counters.fresh;
      counters.fresh_bytes += static_cast<int64_t>(capacity);
    }
  }
  std::shared_ptr<State> state = state_;
  return std::shared_ptr<void>(p, [state, capacity, budget](void* q) {
    state->give_back(q, capacity);
    if (budget) budget->release(capacity);
  });
}

size_t BufferPool::idle_buffers() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->idle.size();
}

void BufferPool::free_unused_since_last_run() {
  std::lock_guard<std::mutex> lock(state_->mu);
  for (auto it = state_->idle.begin(); it != state_->idle.end();) {
    if (it->second.run < state_->run) {
      std::free(it->second.p);
      it = state_->idle.erase(it);
    } else {
      ++it;
    }
  }
  ++state_->run;
}

BufferPool* BufferPool::current() { return t_current; }

BufferPool::Scope::Scope(BufferPool* pool) : previous_(t_current) { t_current = pool; }
BufferPool::Scope::~Scope() { t_current = previous_; }

RunPools::Lease RunPools::lease() {
  if (arena_) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!shelf_.empty()) {
      std::unique_ptr<BufferPool> pool = std::move(shelf_.back());
      shelf_.pop_back();
      return Lease(this, std::move(pool));
    }
  }
  return Lease(this, std::make_unique<BufferPool>(reuse_, counters_));
}

RunPools::Lease::~Lease() {
  if (!pool_ || !owner_->arena_) return;  // moved from, or not kept: the pool frees its buffers
  pool_->free_unused_since_last_run();
  std::lock_guard<std::mutex> lock(owner_->mu_);
  owner_->shelf_.push_back(std::move(pool_));
}

}  // namespace cpu
}  // namespace pyflame_rt
