#include "graph/memory_budget.h"

#include <utility>

#include <limits>
#include <new>
#include <sstream>

namespace pyflame_rt {

namespace {
thread_local MemoryBudget* t_budget = nullptr;
}  // namespace

MemoryBudget::MemoryBudget(int64_t limit_bytes, std::string limit_name)
    : limit_(limit_bytes), limit_name_(std::move(limit_name)) {}

bool MemoryBudget::try_charge(size_t bytes, const char* what) {
  // A size past int64 (a count times an element size, both the model's: a Resize to 2^61
  // floats is 2^63 bytes) is past every limit; as an int64 it was negative, passed the check
  // and left `used` at INT64_MIN (UBSan at the next charge; kernel_run stop 17 run 3).
  const bool past_int64 = bytes > static_cast<size_t>(std::numeric_limits<int64_t>::max());
  const int64_t n = past_int64 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(bytes);
  int64_t now = used_.load(std::memory_order_relaxed);
  do {
    if (past_int64 || n > limit_ - now) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!exceeded_.load(std::memory_order_relaxed)) {
        std::ostringstream s;
        s << "the run needs more memory than " << limit_name_ << " allows: " << (limit_ >> 20) << " MB ("
          << limit_ << " bytes) allowed, " << now << " bytes held, " << bytes << " more asked for";
        if (what) s << " (" << what << ")";
        message_ = s.str();
        exceeded_.store(true, std::memory_order_release);
      }
      return false;
    }
  } while (!used_.compare_exchange_weak(now, now + n, std::memory_order_relaxed));
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now + n > peak && !peak_.compare_exchange_weak(peak, now + n, std::memory_order_relaxed)) {
  }
  return true;
}

void MemoryBudget::release(size_t bytes) { used_.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed); }

std::string MemoryBudget::message() const {
  std::lock_guard<std::mutex> lock(mu_);
  return message_;
}

MemoryBudget* MemoryBudget::current() { return t_budget; }
MemoryBudget::Scope::Scope(MemoryBudget* budget) : previous_(t_budget) { t_budget = budget; }
MemoryBudget::Scope::~Scope() { t_budget = previous_; }

std::shared_ptr<MemoryBudget> charge_current_budget(size_t bytes, const char* what) {
  MemoryBudget* budget = t_budget;
  if (!budget || bytes < MemoryBudget::kChargedFrom) return nullptr;
  if (!budget->try_charge(bytes, what)) throw std::bad_alloc();
  return budget->shared_from_this();
}

ScratchCharge::ScratchCharge(int64_t count, size_t elem_size, const char* what) {
  if (count < 0 || __builtin_mul_overflow(static_cast<size_t>(count), elem_size, &bytes_)) throw std::bad_alloc();
  budget_ = charge_current_budget(bytes_, what);
}

ScratchCharge::~ScratchCharge() {
  if (budget_) budget_->release(bytes_);
}

ScratchCharge::ScratchCharge(ScratchCharge&& other) noexcept
    : bytes_(std::exchange(other.bytes_, 0)), budget_(std::move(other.budget_)) {}

ScratchCharge& ScratchCharge::operator=(ScratchCharge&& other) noexcept {
  if (this != &other) {
    if (budget_) budget_->release(bytes_);
    bytes_ = std::exchange(other.bytes_, 0);
    budget_ = std::move(other.budget_);
  }
  return *this;
}

}  // namespace pyflame_rt
