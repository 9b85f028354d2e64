#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {
thread_local const RunContext* t_context = nullptr;
std::atomic<const char*> g_stop_all{nullptr};  // the reason, while every run is to stop
}  // namespace

void stop_all_runs(const char* reason) { g_stop_all.store(reason ? reason : "the process is stopping"); }
void resume_all_runs() { g_stop_all.store(nullptr); }
bool all_runs_stopped() { return g_stop_all.load() != nullptr; }

namespace {
std::atomic<int64_t> g_runs_in_progress{0};
}  // namespace
int64_t runs_in_progress() { return g_runs_in_progress.load(std::memory_order_relaxed); }
RunInProgress::RunInProgress() { g_runs_in_progress.fetch_add(1, std::memory_order_relaxed); }
RunInProgress::~RunInProgress() { g_runs_in_progress.fetch_sub(1, std::memory_order_relaxed); }

Status RunContext::check() const {
  if (const char* reason = g_stop_all.load(std::memory_order_relaxed)) {
    return make_status(StatusCode::kUnavailable, "the run was stopped: ", reason);
  }
  if (stop_source && stop_source->stopped()) {
    return make_status(StatusCode::kUnavailable, "the run was stopped: ", stop_source->reason());
  }
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

namespace {
thread_local std::shared_ptr<const RunStopSource> t_stop_source;
}  // namespace
RunStopScope::RunStopScope(std::shared_ptr<const RunStopSource> source) : previous_(std::move(t_stop_source)) {
  t_stop_source = std::move(source);
}
RunStopScope::~RunStopScope() { t_stop_source = std::move(previous_); }
std::shared_ptr<const RunStopSource> current_run_stop_source() { return t_stop_source; }

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
