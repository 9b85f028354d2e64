// One pipeline stage at run time: its input channels (one per upstream), the channels it
// feeds, its counters, and the loop its actor runs. Internal to pipeline.cpp.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "actors/pipeline.h"

namespace pyflame_rt {

struct StageRuntime {
  StageSpec spec;
  std::vector<std::shared_ptr<BoundedChannel>> inputs;
  std::vector<std::shared_ptr<BoundedChannel>> outputs;
  std::atomic<uint64_t> processed{0};
  std::atomic<uint64_t> failed{0};
  mutable std::mutex latency_mu;
  std::deque<double> latencies_us;  // the last 1024 run times

  void record_latency(double us);
  StageMetrics metrics() const;
};

// Joins one envelope from every input, runs the stage, feeds every output; returns when the
// inputs are closed and drained (then closes the outputs) or aborted.
void run_stage_loop(StageRuntime& stage);

}  // namespace pyflame_rt
