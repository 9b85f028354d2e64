#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {
thread_local const RunContext* t_context = nullptr;
}  // namespace

Status RunContext::check() const {
  if (terminate && terminate->load(std::memory_order_relaxed)) {
    return make_status(StatusCode::kFail, "the run was terminated (RunOptions.terminate is set)");
  }
  if (deadline != std::chrono::steady_clock::time_point::max() && std::chrono::steady_clock::now() >= deadline) {
    if (timeout_ms > 0) {
      return make_status(StatusCode::kDeadlineExceeded, "the run passed its deadline: ", timeout_name, " is ",
                         timeout_ms, " ms");
    }
    return make_status(StatusCode::kDeadlineExceeded, "the run passed its deadline");
  }
  return Status::OK();
}

const RunContext* current_run_context() { return t_context; }
const std::atomic<bool>* current_run_interrupt() { return t_context ? t_context->terminate : nullptr; }

RunInterruptScope::RunInterruptScope(const std::atomic<bool>* flag)
    : ctx_{flag}, previous_(t_context), budget_(MemoryBudget::current()) {
  t_context = &ctx_;
}
RunInterruptScope::RunInterruptScope(const RunContext& ctx)
    : ctx_(ctx), previous_(t_context), budget_(ctx.memory ? ctx.memory.get() : MemoryBudget::current()) {
  t_context = &ctx_;
}
RunInterruptScope::~RunInterruptScope() { t_context = previous_; }

}  // namespace pyflame_rt
