// The Device interface: what placement asks of a device (which nodes of this graph will you
// take, with which passes) and what the runtime asks of it (compile this partition, run it).
// ONNX Runtime's IExecutionProvider (GetCapability, Compile) and ggml's backend vtable are the
// models; devices are created through the DeviceRegistry (device_registry.h).
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Device> dev, DeviceRegistry::global().create("cpu", {}));
//   DeviceClaim claim = dev->claim(graph, std::vector<bool>(graph.nodes.size(), false));
//   ASSIGN_OR_RETURN(auto exe, dev->compile(partition));
//   ASSIGN_OR_RETURN(std::vector<Value> outs, exe->run(std::move(inputs)));
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "devices/packed_weights.h"
#include "graph/graph.h"
#include "graph/opt_level.h"
#include "graph/value.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

// Time spent in one node during a profiled run.
struct NodeTiming {
  std::string name;
  std::string op_type;
  double duration_us = 0;
  double start_us = 0;  // from the start of the run
};

// Where and how one node runs once compiled: the truth tests assert, so that a silent
// fallback (a native kernel declining at run time, say) fails a test instead of passing it.
struct NodeKernel {
  std::string node;     // node name
  std::string op_type;
  std::string device;   // "cpu", "ref", "wse3"
  std::string kernel;   // "native" (the device's own kernel) or "reference" (plain C++ fallback)
};

// Per-run controls (terminate, deadline, memory budget, pre-allocated outputs): RunContext,
// devices/run_interrupt.h.

// A compiled partition, ready to run. run() may be called from several threads at once.
class Executable {
 public:
  virtual ~Executable() = default;
  // Inputs in the order of the compiled graph's inputs; outputs in the order of its outputs.
  virtual Expected<std::vector<Value>> run(std::vector<Value> inputs) const = 0;
  // run() under per-run controls. Optional: the default checks them once before running.
  virtual Expected<std::vector<Value>> run(std::vector<Value> inputs, const RunContext& ctx) const;
  // Like run(), also recording each node's time in `timings` (in execution order).
  // Optional: devices that cannot time nodes report the whole run as one entry.
  virtual Expected<std::vector<Value>> run_profiled(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const;
  // Every node with the device and kernel that runs it, including choices made at run time
  // (for those, what the latest run did). Optional: the default says nothing.
  virtual std::vector<NodeKernel> node_kernels() const { return {}; }
  // Nodes this executable runs on a slower fallback path, "Op 'name'": by default the
  // node_kernels() whose kernel is "reference".
  virtual std::vector<std::string> fallback_nodes() const;
  // A device's own report as a JSON object (the wafer's placement and cycle estimates); "" if
  // the device has none.
  virtual std::string report_json() const { return ""; }
  // Appends the weights its kernels packed for the shapes run so far (packed_weights.h), for a
  // plan file to keep. Optional: a device that packs nothing, or cannot say, adds none.
  virtual Status export_packed(PackedWeights* out) const { return Status::OK(); }
};

// One supported operator: domain ("" = ai.onnx), type and the opset versions it covers.
struct OpSupport {
  std::string domain;
  std::string op_type;
  int64_t since = 1;
  int64_t until = std::numeric_limits<int64_t>::max();
};

// What a device can run, as data (listed by tools, checked by the default claim()).
struct DeviceCapabilities {
  std::vector<DType> dtypes;   // element types of the tensors its kernels read and write
  std::vector<OpSupport> ops;  // empty with any_op: every op the reference registry has
  bool any_op = false;
  // Empty when `node` (in a graph of default-domain opset `opset`) is supported, else why not
  // ("op Loop is not supported", "dtype int64 of input 'x' is not supported").
  std::string why_not(const Graph& graph, const Node& node) const;
};

// The answer to "which of these nodes do you take": groups of node indices (each group a
// connected piece of the graph the device wants to run as one), and for nodes it looked at
// and refused, why (what get_fallback_nodes() and the placement warnings report).
struct DeviceClaim {
  std::vector<std::vector<size_t>> groups;
  std::map<size_t, std::string> declined;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;  // "ref", "cpu", "wse3"
  virtual const DeviceCapabilities& capabilities() const = 0;
  // Empty when the device can run `node`, else why not. The default asks capabilities();
  // a device with finer rules (shapes, attributes) overrides this rather than claim().
  virtual std::string why_not(const Graph& graph, const Node& node) const {
    return capabilities().why_not(graph, node);
  }
  // ONNX Runtime's GetCapability: the nodes of `graph` this device takes among those not yet
  // `taken` by a device of higher priority. The default takes every node why_not() accepts,
  // grouped into runs of consecutive nodes.
  virtual DeviceClaim claim(const Graph& graph, const std::vector<bool>& taken) const;
  // The device's own passes (names known to compiler/pass_registry.h), run on each partition
  // placed on it, after the device-independent passes of `level`.
  virtual std::vector<std::string> pass_names(OptLevel level) const { return {}; }
  // Relative cost estimate of a node on this device (optional; 1.0 when unknown).
  virtual double cost(const Graph& graph, const Node& node) const { return 1.0; }
  virtual Expected<std::unique_ptr<Executable>> compile(const Graph& partition) = 0;
  // compile() with weights packed before (by export_packed() of an executable of this very
  // partition, kept in a plan file): used where they still fit instead of packing again.
  // Optional: the default ignores them.
  virtual Expected<std::unique_ptr<Executable>> compile_packed(const Graph& partition,
                                                               std::shared_ptr<const PackedWeights> packed) {
    return compile(partition);
  }
};

}  // namespace pyflame_rt
