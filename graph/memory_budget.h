// MemoryBudget: the bytes one run may hold at once (SessionOptions.memory_limit_mb enforced at
// run time). The session creates one per run and installs it on the run's threads (through
// RunInterruptScope, devices/run_interrupt.h); allocations made while it is installed (the CPU
// device's buffer pool, reference kernels' large tensors) are charged to it and credited back
// when freed, so it counts what the run holds, not what it ever allocated. An allocation that
// would pass the limit is refused (std::bad_alloc, which kernels already map to
// kResourceExhausted) and the budget keeps the first refusal's message for the session to
// report. Feeds and weights are not charged: they exist before the run.
//
//   auto budget = std::make_shared<MemoryBudget>(64 << 20, "SessionOptions.memory_limit_mb");
//   { MemoryBudget::Scope scope(budget.get()); ... }
//   if (budget->exceeded()) return make_status(kResourceExhausted, budget->message());
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace pyflame_rt {

class MemoryBudget : public std::enable_shared_from_this<MemoryBudget> {
 public:
  // `limit_name` names the setting in messages ("SessionOptions.memory_limit_mb").
  MemoryBudget(int64_t limit_bytes, std::string limit_name);

  // True (and counted) when `bytes` more stay within the limit; false records the refusal.
  // `what` (may be null) names the allocation in the refusal's message ("a oneDNN scratchpad").
  bool try_charge(size_t bytes, const char* what = nullptr);
  void release(size_t bytes);

  int64_t limit() const { return limit_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  bool exceeded() const { return exceeded_.load(std::memory_order_acquire); }
  // The first refusal: the limit, what was held and what was asked for.
  std::string message() const;

  // Allocations of at least this many bytes are charged (smaller ones are bookkeeping: a
  // shape, a scalar; charging them would cost more than they weigh).
  static constexpr size_t kChargedFrom = 4096;

  // The budget of the run on this thread (nullptr: none, nothing is charged).
  static MemoryBudget* current();
  class Scope {
   public:
    explicit Scope(MemoryBudget* budget);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    MemoryBudget* previous_;
  };

 private:
  const int64_t limit_;
  const std::string limit_name_;
  std::atomic<int64_t> used_{0}, peak_{0};
  std::atomic<bool> exceeded_{false};
  mutable std::mutex mu_;
  std::string message_;
};

// Charges `bytes` to the budget installed on this thread, if any and if large enough. Returns
// the budget to credit later (nullptr when nothing was charged); throws std::bad_alloc when
// the charge would pass the limit. `what` as for try_charge.
std::shared_ptr<MemoryBudget> charge_current_budget(size_t bytes, const char* what = nullptr);

// A kernel's scratch sized by its inputs' values or shapes (a std::vector a window, DFT or
// im2col fills before the output tensor exists), charged to the run's budget for the charge's
// lifetime, so such a buffer counts like a tensor (a HannWindow of size 2^28 took 4 GB past a
// 64 MB memory_limit_mb: kernel_run). Declare it before the buffer. Throws std::bad_alloc when
// the charge would pass the limit, or when `count` elements of `elem_size` bytes cannot be
// represented (negative, or past size_t) whatever the budget.
//
//   ScratchCharge charge(size, sizeof(double));
//   std::vector<double> w(static_cast<size_t>(size));
class ScratchCharge {
 public:
  ScratchCharge() = default;  // nothing charged
  ScratchCharge(int64_t count, size_t elem_size, const char* what = "a kernel's scratch buffer");
  ~ScratchCharge();
  ScratchCharge(const ScratchCharge&) = delete;
  ScratchCharge& operator=(const ScratchCharge&) = delete;
  // Moves hand the charge over (a buffer returned with its charge): the source releases nothing.
  ScratchCharge(ScratchCharge&& other) noexcept;
  ScratchCharge& operator=(ScratchCharge&& other) noexcept;

 private:
  size_t bytes_ = 0;
  std::shared_ptr<MemoryBudget> budget_;
};

}  // namespace pyflame_rt
