// The Device interface: what the compiler asks of a device (can you run this op, what does it
// cost) and what the runtime asks of it (compile this partition, run it).
//
//   std::unique_ptr<Device> dev = make_ref_device();
//   ASSIGN_OR_RETURN(auto exe, dev->compile(graph));
//   ASSIGN_OR_RETURN(std::vector<Value> outs, exe->run(std::move(inputs)));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/value.h"

namespace pyflame_rt {

// Time spent in one node during a profiled run.
struct NodeTiming {
  std::string name;
  std::string op_type;
  double duration_us = 0;
  double start_us = 0;  // from the start of the run
};

// A compiled partition, ready to run. run() may be called from several threads at once.
class Executable {
 public:
  virtual ~Executable() = default;
  // Inputs in the order of the compiled graph's inputs; outputs in the order of its outputs.
  virtual Expected<std::vector<Value>> run(std::vector<Value> inputs) const = 0;
  // Like run(), also recording each node's time in `timings` (in execution order).
  // Optional: devices that cannot time nodes report the whole run as one entry.
  virtual Expected<std::vector<Value>> run_profiled(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const;
  // Nodes this executable runs on a slower fallback path (e.g. reference kernels on the CPU
  // device), described as "Op 'name'". Optional.
  virtual std::vector<std::string> fallback_nodes() const { return {}; }
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;  // "ref", "cpu", "wse2"
  virtual bool supports_op(const Node& node, int64_t opset) const = 0;
  // Relative cost estimate of a node on this device (optional; 1.0 when unknown).
  virtual double cost(const Node& node) const { return 1.0; }
  virtual Expected<std::unique_ptr<Executable>> compile(const Graph& partition) = 0;
};

std::unique_ptr<Device> make_ref_device();
// The CPU device (oneDNN kernels, reference fallback). num_threads 0 = one per core.
// parallel_branches: nodes that do not depend on each other run at the same time on up to two
// workers, each with its share of the threads (execution_mode "parallel").
std::unique_ptr<Device> make_cpu_device(int num_threads, bool parallel_branches = false);

// Everything the CPU device can be told (a session passes its SessionOptions on).
struct CpuDeviceOptions {
  int num_threads = 0;             // 0 = one per core
  bool parallel_branches = false;  // execution_mode "parallel"
  // enable_memory_reuse: an output's buffer is reused, once its last reader ran, for a later
  // output; false: every output its own allocation, freed when released.
  bool memory_reuse = true;
  // memory_pool "arena" (the session's default): a run's buffers are kept for later runs (no
  // allocation in a steady state, one run's peak held per concurrent run); false ("default"):
  // returned to the system at the end of each run. Ignored without memory_reuse.
  bool memory_arena = true;
};
std::unique_ptr<Device> make_cpu_device(const CpuDeviceOptions& options);

}  // namespace pyflame_rt
