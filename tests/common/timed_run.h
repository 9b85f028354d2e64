// A compiled model's run as a session makes it (RunInterruptScope installed), timed: what the
// deadline tests (inside native and reference kernels) measure.
#pragma once

#include <chrono>
#include <vector>

#include "devices/run_interrupt.h"
#include "graph/value.h"

namespace pyflame_rt {

struct TimedRun {
  Status status;
  std::chrono::steady_clock::duration elapsed{};
};

// Runs `exe` (a device's compiled model) on `feeds` under `ctx`. A deadline counts from the
// run, not from before the compile: on a loaded machine the compile alone could pass 50 ms and
// stop the run before its node (RefDeadlineTest's Unique once ended so, "the CPU device ran the
// node natively", as the node never ran).
template <typename Executable>
TimedRun timed_run(const Executable& exe, const std::vector<Value>& feeds, const RunContext& ctx) {
  RunContext run_ctx = ctx;
  if (run_ctx.timeout_ms > 0) {
    run_ctx.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(run_ctx.timeout_ms);
  }
  TimedRun r;
  const auto start = std::chrono::steady_clock::now();
  {
    RunInterruptScope scope(run_ctx);
    auto out = exe.run(feeds, run_ctx);
    r.status = out.ok() ? Status::OK() : out.status();
  }
  r.elapsed = std::chrono::steady_clock::now() - start;
  return r;
}

}  // namespace pyflame_rt
