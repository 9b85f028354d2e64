// Per-run controls checked between nodes: ONNX Runtime's RunOptions.terminate, a deadline
// (RunOptions.timeout_ms) and a memory budget (SessionOptions.memory_limit_mb). The session
// installs the run's RunContext for the thread that runs it; executors call
// check_run_interrupt() before each node and each Loop/Scan iteration. A thread that runs
// nodes for the same run (a parallel executor's helper, a device actor of a multi-device
// model) installs the same context; the memory budget comes with it (graph/memory_budget.h).
// A reference kernel whose own work a model can make huge checks inside it (InterruptPoll).
//
//   RunContext ctx;  ctx.terminate = &run_options.terminate;  ctx.deadline = ...;
//   RunInterruptScope scope(ctx);
//   for (const Step& step : steps_) { RETURN_IF_ERROR(check_run_interrupt()); ... }
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "graph/memory_budget.h"
#include "graph/tensor.h"
#include "graph/status.h"

namespace pyflame_rt {

class RunStopSource;

// A run that stops returns kFail ("terminated", as ONNX Runtime), kDeadlineExceeded, or
// kUnavailable when the whole process or its group stops its runs (stop_all_runs,
// RunStopSource, below).
struct RunContext {
  const std::atomic<bool>* terminate = nullptr;
  // The group of runs this one belongs to (a server's frames, RunStopScope below): stopping it
  // ends the run at its next check with kUnavailable naming the group's reason.
  std::shared_ptr<const RunStopSource> stop_source;
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

// Every run of the process, in flight or to come, stops at its next check (between nodes, or
// an InterruptPoll inside a kernel) with kUnavailable "the run was stopped: <reason>": what
// the CLI servers do at SIGTERM, so that a run does not hold the shutdown up for its whole
// length (docs/reliability.md, "Shutdown"). `reason` must outlive the process (a literal).
// resume_all_runs() undoes it (tests, or an embedder that stops and starts again).
void stop_all_runs(const char* reason);
void resume_all_runs();
bool all_runs_stopped();

// The runs one owner started (a served stage's frames: pyflame_rt.serve) that it can stop
// together, without stopping the rest of the process as stop_all_runs does: a run whose
// RunContext carries the source ends at its next check (between nodes, Loop iterations, the
// polls inside kernels) with kUnavailable "the run was stopped: <reason>" once stop() is called.
// A session picks the source up from the thread that calls run() (RunStopScope), and the
// RunContext carries it to every thread of that run.
class RunStopSource {
 public:
  explicit RunStopSource(std::string reason) : reason_(std::move(reason)) {}
  void stop() { stopped_.store(true, std::memory_order_release); }
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  const std::string& reason() const { return reason_; }

 private:
  const std::string reason_;
  std::atomic<bool> stopped_{false};
};

// Runs started on this thread while the scope lives belong to `source`.
class RunStopScope {
 public:
  explicit RunStopScope(std::shared_ptr<const RunStopSource> source);
  ~RunStopScope();
  RunStopScope(const RunStopScope&) = delete;
  RunStopScope& operator=(const RunStopScope&) = delete;

 private:
  std::shared_ptr<const RunStopSource> previous_;
};
// The source of the innermost RunStopScope on this thread (nullptr: none).
std::shared_ptr<const RunStopSource> current_run_stop_source();

// The process's model runs in progress (InferenceSession counts each of its runs), for what a
// shutdown that passed its bound reports as still running.
int64_t runs_in_progress();
class RunInProgress {
 public:
  RunInProgress();
  ~RunInProgress();
  RunInProgress(const RunInProgress&) = delete;
  RunInProgress& operator=(const RunInProgress&) = delete;
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

// check_run_interrupt() inside one kernel whose work a model's attributes or values size (a
// GEMM of 10^11 multiply-adds on inputs of a few MB, a window, a sampling ratio, a
// dft_length): the kernel counts the work it does and the run is checked once per
// `work_per_check` units. A unit is an inner-loop step (a multiply-add, a tap, an element
// read; about a nanosecond), so the default checks every ~65 us of work: one clock read per
// ~65,000 units, negligible. One poll per kernel call, passed down to helpers (a poll made
// per frame or per row of a short loop would never reach its count).
//
//   InterruptPoll poll;
//   for (int64_t i = 0; i < M; ++i) { RETURN_IF_ERROR(poll.tick(N * K)); ... row i ... }
class InterruptPoll {
 public:
  static constexpr int64_t kWorkPerCheck = int64_t{1} << 16;
  explicit InterruptPoll(int64_t work_per_check = kWorkPerCheck) : every_(work_per_check), left_(work_per_check) {}
  // Counts `work` (>= 0) units; OK, or the status that ends the run once a check finds it so.
  Status tick(int64_t work = 1) {
    left_ -= work;  // left_ is in (0, every_] before: no overflow for any work >= 0
    if (left_ > 0) return Status::OK();
    left_ = every_;
    return check_run_interrupt();
  }

 private:
  int64_t every_;
  int64_t left_;
};

}  // namespace pyflame_rt
