// Per-run controls checked between nodes: ONNX Runtime's RunOptions.terminate, a deadline
// (RunOptions.timeout_ms) and a memory budget (SessionOptions.memory_limit_mb). The session
// installs the run's RunContext for the thread that runs it; executors call
// check_run_interrupt() before each node and each Loop/Scan iteration. A thread that runs
// nodes for the same run (a parallel executor's helper, a device actor of a multi-device
// model) installs the same context; the memory budget comes with it (graph/memory_budget.h).
//
//   RunContext ctx;  ctx.terminate = &run_options.terminate;  ctx.deadline = ...;
//   RunInterruptScope scope(ctx);
//   for (const Step& step : steps_) { RETURN_IF_ERROR(check_run_interrupt()); ... }
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>

#include "graph/memory_budget.h"
#include "graph/tensor.h"
#include "graph/status.h"

namespace pyflame_rt {

// A run that stops returns kFail ("terminated", as ONNX Runtime) or kDeadlineExceeded.
struct RunContext {
  const std::atomic<bool>* terminate = nullptr;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  int64_t timeout_ms = 0;                // what set the deadline (named in its error)
  const char* timeout_name = "RunOptions.timeout_ms";  // the setting it came from
  std::shared_ptr<MemoryBudget> memory;  // nullptr: no limit
  // Graph outputs the caller pre-allocated (IOBinding), by value name: tensors wrapping the
  // caller's buffers, alive for the run. A device may write an output straight into its buffer
  // and return a tensor on that same memory; any output it does not, the session copies in.
  const std::map<std::string, Tensor>* preallocated = nullptr;
  // OK, or the status that ends the run now.
  Status check() const;
};

// The context installed on this thread (nullptr: the run cannot be cancelled).
const RunContext* current_run_context();
// Its terminate flag (nullptr when none).
const std::atomic<bool>* current_run_interrupt();

class RunInterruptScope {
 public:
  explicit RunInterruptScope(const std::atomic<bool>* flag);  // terminate only
  explicit RunInterruptScope(const RunContext& ctx);
  ~RunInterruptScope();
  RunInterruptScope(const RunInterruptScope&) = delete;
  RunInterruptScope& operator=(const RunInterruptScope&) = delete;

 private:
  RunContext ctx_;  // a copy: the scope never depends on the caller's object living on
  const RunContext* previous_;
  MemoryBudget::Scope budget_;
};

// OK, or kFail once the installed terminate flag is set, or kDeadlineExceeded once its
// deadline passed (a clock read only when a deadline is set).
inline Status check_run_interrupt() {
  const RunContext* ctx = current_run_context();
  return ctx ? ctx->check() : Status::OK();
}

}  // namespace pyflame_rt
