// The CPU device: native oneDNN ops where they exist, the reference kernels elsewhere, node
// by node. Graphs with control flow (If/Loop/Scan bodies) run entirely on the reference
// interpreter, which owns subgraph scoping.
#include "devices/cpu/cpu_program.h"
#include "devices/device.h"

namespace pyflame_rt {

namespace {

bool has_subgraphs(const Graph& g) {
  for (const auto& n : g.nodes) {
    for (const auto& kv : n.attributes) if (kv.second.g || !kv.second.graphs.empty()) return true;
  }
  return false;
}

class CpuDevice : public Device {
 public:
  explicit CpuDevice(const CpuDeviceOptions& options) : options_(options) {}
  std::string name() const override { return "cpu"; }
  bool supports_op(const Node& node, int64_t) const override {
    return KernelRegistry::reference().find(node.domain, node.op_type) != nullptr;
  }
  Expected<std::unique_ptr<Executable>> compile(const Graph& partition) override {
    if (has_subgraphs(partition)) return make_ref_device()->compile(partition);
    ASSIGN_OR_RETURN(auto program, cpu::CpuProgram::build(partition, options_));
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

}  // namespace pyflame_rt
