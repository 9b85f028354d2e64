// CompiledModel: the compiled state a session runs (ONNX Runtime's SessionState, TensorRT's
// engine): the optimised graph placed on devices and cut into partitions, each compiled by
// its device into an Executable. Immutable once built; serialisable to bytes so that a cache
// can keep it. The session holds options, metadata and one of these.
//
//   std::vector<std::shared_ptr<Device>> devices = {wse, cpu};          // provider order
//   ASSIGN_OR_RETURN(auto model, CompiledModel::compile(optimised, devices, OptLevel::kAll, {}));
//   ASSIGN_OR_RETURN(std::vector<Value> outs, model->run(std::move(inputs), RunContext{}));
//   ASSIGN_OR_RETURN(std::string bytes, model->serialize());
//
// One partition runs directly on the caller's thread (no actor hop); several run as device
// actors joined by typed messages (actors/partition_chain.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "devices/device.h"
#include "devices/device_registry.h"
#include "graph/graph.h"

namespace pyflame_rt {

class PartitionChain;

// A weight kept outside CompiledModel's bytes (a plan file stores it aligned and maps it):
// the partition it belongs to, its initializer name and the tensor.
struct ExternalTensor {
  size_t partition = 0;
  std::string name;
  Tensor tensor;
};

struct CompiledPartition {
  std::string name;                // "p0"
  std::string device;              // the registry name of the device that runs it
  Graph graph;                     // after the device's own passes
  std::vector<std::string> carry;  // values the frame keeps after it
  std::shared_ptr<const Executable> executable;
};

class CompiledModel {
 public:
  // Places `graph` (after the device-independent passes) on `devices` (highest priority
  // first), runs each device's own passes at `level` on its partitions and compiles them.
  static Expected<std::shared_ptr<CompiledModel>> compile(const Graph& graph,
                                                          const std::vector<std::shared_ptr<Device>>& devices,
                                                          OptLevel level,
                                                          const std::vector<std::string>& disabled_passes);
  // The inverse of serialize(): devices are created from the registry with `config`, and
  // each partition is compiled again without passes (its graph is stored after them).
  static Expected<std::shared_ptr<CompiledModel>> deserialize(const std::string& bytes, const DeviceConfig& config);
  // deserialize() onto the session's own `devices` (made from its providers and options; a
  // partition whose device is not among them gets one from the registry with `config`), with
  // the weights serialize(&external) left out put back from `external`.
  static Expected<std::shared_ptr<CompiledModel>> deserialize(const std::string& bytes,
                                                              const std::vector<std::shared_ptr<Device>>& devices,
                                                              const DeviceConfig& config,
                                                              std::vector<ExternalTensor> external,
                                                              std::map<size_t, PackedWeights> packed = {});
  ~CompiledModel();

  const std::vector<ValueInfo>& inputs() const { return inputs_; }
  const std::vector<ValueInfo>& outputs() const { return outputs_; }
  const std::vector<CompiledPartition>& partitions() const { return partitions_; }
  // Device names in the order their first partition runs, without repeats.
  std::vector<std::string> devices_used() const;

  // Inputs in the order of inputs(); outputs in the order of outputs().
  Expected<std::vector<Value>> run(std::vector<Value> inputs, const RunContext& ctx) const;
  // Per-node times of every partition, in run order.
  Expected<std::vector<Value>> run_profiled(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const;

  // Every node with the device and kernel that runs it (the latest run's run-time choices).
  std::vector<NodeKernel> node_kernels() const;
  // Nodes placed on a lower-priority device than asked for, with the reason, then the nodes
  // each device runs on a fallback path: "Conv 'c1': not on wse3: ...", "Op 'x'".
  std::vector<std::string> fallback_nodes() const;
  // The placement part of fallback_nodes(): nodes a higher-priority device refused, and why.
  const std::vector<std::string>& declined() const { return declined_; }
  // {"partitions": [{"name", "device", "nodes", "report": <the device's report or null>}]}
  std::string report_json() const;

  Expected<std::string> serialize() const;
  // serialize() without the bytes of initializers of at least `min_bytes`: each is left in
  // its graph as an empty placeholder and appended to `external` (a plan file stores them
  // aligned, to be mapped rather than parsed and copied).
  Expected<std::string> serialize(std::vector<ExternalTensor>* external, size_t min_bytes = 256) const;

  // Shape-specialised plans: when every input has a static shape (fixed by the model or by
  // SessionOptions.input_shapes), one run on zeros builds every kernel's plan for those
  // shapes, packing its weights. False (nothing run) when some input's shape is not static
  // or is not numeric; an error when that run fails.
  Expected<bool> warm_up() const;
  // Per partition index: the weights its executable packed so far (Executable::export_packed),
  // for a plan file; the inverse is deserialize(..., packed).
  Status export_packed(std::map<size_t, PackedWeights>* out) const;

 private:
  CompiledModel() = default;
  Status start_chain();

  std::vector<ValueInfo> inputs_, outputs_;
  std::vector<CompiledPartition> partitions_;
  std::vector<std::string> declined_;
  std::vector<std::shared_ptr<Device>> devices_;  // kept alive for their executables
  std::unique_ptr<PartitionChain> chain_;  // several partitions: their device actors
};

}  // namespace pyflame_rt
