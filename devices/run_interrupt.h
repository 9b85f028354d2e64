// Cancelling a run between nodes. The session installs the run's terminate flag for the
// thread that runs it; executors call check_run_interrupt() before each node and each
// Loop/Scan iteration. A thread that runs nodes for the same run (a parallel executor's
// helper) installs the same flag.
//
//   RunInterruptScope scope(&run_options.terminate);
//   for (const Step& step : steps_) { RETURN_IF_ERROR(check_run_interrupt()); ... }
#pragma once

#include <atomic>

#include "graph/status.h"

namespace pyflame_rt {

// The flag installed on this thread (nullptr: the run cannot be cancelled).
const std::atomic<bool>* current_run_interrupt();

class RunInterruptScope {
 public:
  explicit RunInterruptScope(const std::atomic<bool>* flag);
  ~RunInterruptScope();
  RunInterruptScope(const RunInterruptScope&) = delete;
  RunInterruptScope& operator=(const RunInterruptScope&) = delete;

 private:
  const std::atomic<bool>* previous_;
};

// kFail once the installed flag is set, OK otherwise (one relaxed load: cheap per node).
inline Status check_run_interrupt() {
  const std::atomic<bool>* flag = current_run_interrupt();
  if (flag && flag->load(std::memory_order_relaxed)) {
    return Status(StatusCode::kFail, "the run was terminated (RunOptions.terminate was set)");
  }
  return Status::OK();
}

}  // namespace pyflame_rt
