// The CPU device: native oneDNN ops where they exist, the reference kernels elsewhere, node
// by node. Graphs with control flow (If/Loop/Scan bodies) run entirely on the reference
// interpreter, which owns subgraph scoping.
#include "devices/cpu/cpu_device.h"

#include "devices/cpu/cpu_program.h"
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
  // Every op the reference kernels have, in every dtype: what has no native kernel runs on
  // them (and is reported by fallback_nodes()).
  const DeviceCapabilities& capabilities() const override {
    static const DeviceCapabilities caps = [] {
      DeviceCapabilities c;
      c.any_op = true;
      return c;
    }();
    return caps;
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
      ASSIGN_OR_RETURN(std::unique_ptr<Executable> ref, make_ref_device()->compile(partition));
      return std::unique_ptr<Executable>(new CpuOnReference(std::move(ref)));
    }
    ASSIGN_OR_RETURN(auto program, cpu::CpuProgram::build(partition, options_, std::move(packed)));
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
    return make_cpu_device(o);
  };
  return e;
}

}  // namespace pyflame_rt
