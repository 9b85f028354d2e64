// The CPU device: native oneDNN ops where they exist, the reference kernels elsewhere, node
// by node. The nodes between control-flow nodes run natively (cpu/control_flow_split.h), so do
// an If's branches (cpu/native_if.h) and a Loop's body (cpu/native_loop.h); Scan bodies run on
// the reference interpreter, which owns subgraph scoping.
#include "devices/cpu/cpu_device.h"

#include "devices/cpu/control_flow_split.h"
#include "devices/cpu/cpu_program.h"
#include "devices/cpu/half_weights.h"
#include "devices/cpu/native_op_table.h"
#include "devices/device_registry.h"
#include "devices/ref/ref_device.h"

namespace pyflame_rt {

namespace {

bool has_subgraphs(const Graph& g) {
  for (const auto& n : g.nodes) {
    for (const auto& kv : n.attributes) if (kv.second.g || !kv.second.graphs.empty()) return true;
  }
  return false;
}

// A graph with control flow runs on the reference interpreter (it owns subgraph scoping):
// every node is then a reference-kernel node of the CPU device.
class CpuOnReference : public Executable {
 public:
  explicit CpuOnReference(std::unique_ptr<Executable> ref) : ref_(std::move(ref)) {}
  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override { return ref_->run(std::move(inputs)); }
  std::vector<NodeKernel> node_kernels() const override {
    std::vector<NodeKernel> out = ref_->node_kernels();
    for (auto& k : out) {
      k.device = "cpu";
      k.kernel = "reference";
    }
    return out;
  }

 private:
  std::unique_ptr<Executable> ref_;
};

class CpuDevice : public Device {
 public:
  explicit CpuDevice(const CpuDeviceOptions& options) : options_(options) {}
  std::string name() const override { return "cpu"; }
  // The native kernels' table (cpu/native_op_table.h, with their opset ranges) and every op
  // the reference kernels have: what has no native kernel runs on them (and is reported by
  // fallback_nodes()). dtypes stay empty: between them, every dtype has a kernel.
  const DeviceCapabilities& capabilities() const override {
    static const DeviceCapabilities caps = [] {
      DeviceCapabilities c;
      for (const cpu::NativeOpEntry& e : cpu::NativeOpTable::cpu().entries()) {
        c.ops.push_back({e.domain, e.op_type, e.since, e.until});
      }
      for (const KernelDef& d : KernelRegistry::reference().defs()) c.ops.push_back({d.domain, d.op_type, d.since, d.until});
      return c;
    }();
    return caps;
  }
  // The same two sources, asked live (custom ops registered after start-up are reference
  // kernels too): a node is taken when a native kernel is registered for its (domain, op,
  // opset, input dtype) or the reference registry has one; else both reasons.
  std::string why_not(const Graph& graph, const Node& node) const override {
    int64_t opset = graph.opset(canonical_domain(node.domain));
    DType dtype = cpu::first_input_dtype(graph, node);
    const cpu::NativeOpTable& table = cpu::NativeOpTable::cpu();
    if (!table.find(node.domain, node.op_type, opset, dtype).empty()) return "";
    if (KernelRegistry::reference().find(node.domain, node.op_type, opset, dtype)) return "";
    return "op '" + node.op_type + "'" + (node.domain.empty() ? "" : " of domain '" + node.domain + "'") +
           (opset > 0 ? " (opset " + std::to_string(opset) + ")" : "") + " is not supported: " +
           table.why_not(node.domain, node.op_type, opset, dtype) + ", and no reference kernel";
  }
  // The blocked-layout choice is a CPU matter (nChw8c/nChw16c for its convolutions).
  std::vector<std::string> pass_names(OptLevel level) const override {
    if (level == OptLevel::kAll) return {"layout_assignment"};
    return {};
  }
  Expected<std::unique_ptr<Executable>> compile(const Graph& partition) override {
    return compile_packed(partition, nullptr);
  }
  Expected<std::unique_ptr<Executable>> compile_packed(const Graph& partition,
                                                       std::shared_ptr<const PackedWeights> packed) override {
    if (has_subgraphs(partition)) {
      auto reference = [](const Graph& g) -> Expected<std::unique_ptr<Executable>> {
        ASSIGN_OR_RETURN(std::unique_ptr<Executable> ref, make_ref_device()->compile(g));
        return std::unique_ptr<Executable>(new CpuOnReference(std::move(ref)));
      };
      // Control-flow nodes on the interpreter, the rest native (cpu/control_flow_split.h);
      // the whole graph on the interpreter when it cannot be cut (feeds that may override
      // initializers, an unsorted graph).
      if (partition.overridable_initializers.empty()) {
        auto split = cpu::compile_around_control_flow(
            partition, [&](const Graph& g) { return compile_packed(g, packed); }, reference);
        if (split.ok()) return split;
      }
      return reference(partition);
    }
    // Half-precision weights go to the native convolutions and matmuls as they are stored.
    Graph graph = partition;
    cpu::absorb_half_weights(graph);
    ASSIGN_OR_RETURN(auto program, cpu::CpuProgram::build(graph, options_, std::move(packed)));
    return std::unique_ptr<Executable>(std::move(program));
  }

 private:
  CpuDeviceOptions options_;
};

}  // namespace

std::unique_ptr<Device> make_cpu_device(int num_threads, bool parallel_branches) {
  CpuDeviceOptions options;
  options.num_threads = num_threads;
  options.parallel_branches = parallel_branches;
  return make_cpu_device(options);
}

std::unique_ptr<Device> make_cpu_device(const CpuDeviceOptions& options) {
  return std::make_unique<CpuDevice>(options);
}

DeviceEntry cpu_device_entry() {
  DeviceEntry e;
  e.name = "cpu";
  e.provider = "CPUExecutionProvider";
  e.summary = "the host CPU: oneDNN and our own vector kernels, reference kernels for the rest";
  e.create = [](const DeviceConfig& config) -> Expected<std::unique_ptr<Device>> {
    // ONNX Runtime's CPU options (use_arena, ...) are accepted, as there, but change nothing
    // here: each is reported, none refused.
    for (const auto& kv : config.options) {
      if (config.warnings) {
        config.warnings->push_back("CPUExecutionProvider: provider option '" + kv.first + "' is ignored (the CPU "
                                   "device takes none; see SessionOptions for its settings)");
      }
    }
    CpuDeviceOptions o;
    o.num_threads = config.num_threads;
    o.parallel_branches = config.parallel_branches;
    o.memory_reuse = config.memory_reuse;
    o.memory_arena = config.memory_arena;
    o.flush_denormals = config.flush_denormals;
    return make_cpu_device(o);
  };
  return e;
}

}  // namespace pyflame_rt
