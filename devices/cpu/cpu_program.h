// CpuProgram: a graph compiled for the CPU device. Nodes with a native op run on oneDNN and
// pass tensors to each other in oneDNN's (blocked) layouts; every other node runs its
// reference kernel on plain tensors, converted only where a plain consumer needs them.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "devices/cpu/buffer_pool.h"
#include "devices/cpu/native_op.h"
#include "devices/cpu/step_threads.h"
#include "devices/cpu/cpu_device.h"

namespace pyflame_rt {
namespace cpu {

class CpuProgram : public Executable {
 public:
  // options.num_threads 0 = oneDNN's default (one per core). options.parallel_branches:
  // independent steps run at the same time on two workers (see execute_parallel).
  // options.memory_reuse/memory_arena: where native outputs' buffers come from (buffer_pool.h).
  // `packed` (optional): weights packed by export_packed() of a program of this graph; the
  // plans of their shapes are built now (on two threads), mapping them instead of packing.
  static Expected<std::unique_ptr<CpuProgram>> build(const Graph& graph, const CpuDeviceOptions& options = {},
                                                     std::shared_ptr<const PackedWeights> packed = nullptr);
  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override { return execute(std::move(inputs), nullptr); }
  // With ctx.preallocated: a bound output whose last writer is a native op allocating it in
  // the plain layout with the bound dtype and dims is written into the caller's buffer (the
  // returned tensor is on that memory); any other bound output comes back in its own memory.
  Expected<std::vector<Value>> run(std::vector<Value> inputs, const RunContext& ctx) const override {
    RETURN_IF_ERROR(ctx.check());
    return execute(std::move(inputs), nullptr, ctx.preallocated);
  }
  Expected<std::vector<Value>> run_profiled(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const override {
    return execute(std::move(inputs), timings);
  }

  // Per node: "native" or "reference" (what fallback_nodes() reports).
  std::vector<NodeKernel> node_kernels() const override;
  // The nodes that run on the reference kernels (for reports and tests), each with why: those
  // without a native op ("Erf 'e': no native kernel for Erf"), and those whose native op fell
  // back to the reference kernel in the latest run.
  std::vector<std::string> fallback_nodes() const override;
  // {"weights": ...}: the initializers this program holds, by dtype, and how half-precision
  // weights compute (half_weights.h: weights_report_json).
  std::string report_json() const override;
  // The packed weights of every native op's plans built so far (by runs, or by build()).
  Status export_packed(PackedWeights* out) const override;

  // Per node, in run order: its name (its first output's when unnamed) and whether its native
  // kernel ran in the latest run, false when it has none or fell back to the reference kernel at
  // run time (an unexpected dtype or shape). Before the first run: whether it has a native op.
  std::vector<std::pair<std::string, bool>> native_by_node() const;

  // Buffers the runs of this program obtained for native outputs so far (for tests).
  const BufferPoolCounters& buffer_counters() const { return pools_->counters(); }
  // Steps run so far, by the OpenMP team they were given (step_threads.h): on the calling
  // thread alone (no worker is woken for them) or with a team of 2+ threads (for tests).
  struct StepTeamCounters {
    std::atomic<int64_t> one_thread{0};
    std::atomic<int64_t> team{0};
  };
  const StepTeamCounters& step_team_counters() const { return team_counters_; }

 private:
  struct Step {
    const Node* node;
    int64_t opset;
    std::unique_ptr<NativeOp> native;  // null: reference kernel
    std::string no_native;              // with native null: why (NativeOpTable's answer)
    std::vector<int> inputs, outputs, release;
    std::vector<int> release_once;  // released after it and read once by it: it may overwrite them
    std::vector<size_t> consumers;  // steps that read one of its outputs (each once)
    int producers = 0;              // distinct steps whose outputs it reads
    StepWork work = StepWork::kOwn;  // what its team size follows (step_threads.h)
  };

  Expected<std::vector<Value>> execute(std::vector<Value> inputs, std::vector<NodeTiming>* timings,
                                       const std::map<std::string, Tensor>* preallocated = nullptr) const;
  // Per step: the caller's buffer its output may be written into, or null. Only a step with
  // one output, not an input or constant, and a buffer overlapping no input and no other
  // bound buffer (a feed bound as output too would be overwritten while still read).
  std::vector<const Tensor*> destinations(const std::map<std::string, Tensor>& preallocated,
                                          const std::vector<Value>& inputs) const;
  Status execute_parallel(std::vector<CpuValue>& slots, int threads, std::vector<NodeTiming>* timings,
                          const std::vector<const Tensor*>& dest) const;
  // One step on `in` (nullptr = absent input), exceptions turned into errors naming the node.
  // Records in ran_native_[index] whether the native kernel ran (no reference fallback).
  // `dest`: the caller's buffer for its output (OutputDestination), or null.
  Status run_step(size_t index, const std::vector<CpuValue*>& in, std::vector<CpuValue>& out,
                  const Tensor* dest = nullptr) const;
  // Hands each native op its blobs of `packed` and builds their plans (import_packed, prepare).
  // Fails (kInvalidProtobuf) when a reader of a weight the plan left out did not take its blob.
  Status import_packed(const PackedWeights& packed);
  // The OpenMP threads of a run on the calling thread (num_threads, under its thread limit).
  int configured_threads() const;
  // Whether a run of `threads` on this thread meets contended cores (core_contention.h; never
  // for a program on stand-in weights, nor for one whose typical run is shorter than
  // kMinShrinkableRun): its steps then take the team only for large problems.
  bool run_contended(int threads) const;
  // Sets the calling thread's OpenMP team for step `index` on `in`: `threads`, or 1 when its
  // problem is too small to pay for a fork (step_threads.h; larger limits when `contended`,
  // and then the step's team is also its plans' key, RunTeam).
  void set_step_threads(size_t index, const std::vector<CpuValue*>& in, int threads, bool contended = false) const;

  Graph graph_;
  int num_threads_ = 0;
  bool parallel_ = false;
  bool flush_denormals_ = false;  // CpuDeviceOptions.flush_denormals (denormals.h)
  bool has_stand_ins_ = false;    // weights a plan file left out (import_packed): the team is kept
  std::unique_ptr<RunPools> pools_;  // where each run gets the buffers of native outputs
  std::vector<int> readers_;  // per slot: how many steps read it (each once); outputs excluded from release
  std::unordered_map<std::string, int> slot_of_;
  size_t slot_count_ = 0;
  std::vector<int> input_slots_, output_slots_;
  std::vector<std::pair<int, Tensor>> constants_;
  std::vector<Step> steps_;
  std::vector<int> producer_of_;  // per slot: the step that writes it, -1 for inputs and constants
  // Per step: did its native kernel run in the latest run (concurrent runs may write it).
  std::unique_ptr<std::atomic<bool>[]> ran_native_;
  mutable StepTeamCounters team_counters_;
  // A typical run's wall time (0: none yet), for run_contended: each run's, or the last
  // estimate x 1.25 when that is smaller. On loaded cores a run of microseconds now and then
  // waits milliseconds for a core; one such run must not make the program look long, while
  // a program whose runs all take longer (new shapes) is seen so within a few runs. Shrunk or
  // not, a run this short would be as short with the full team.
  mutable std::atomic<int64_t> typical_run_ns_{0};
};

}  // namespace cpu
}  // namespace pyflame_rt
