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
  CpuDevice(int num_threads, bool parallel) : num_threads_(num_threads), parallel_(parallel) {}
  std::string name() const override { return "cpu"; }
  bool supports_op(const Node& node, int64_t) const override {
    return KernelRegistry::reference().find(node.domain, node.op_type) != nullptr;
  }
  Expected<std::unique_ptr<Executable>> compile(const Graph& partition) override {
    if (has_subgraphs(partition)) return make_ref_device()->compile(partition);
    ASSIGN_OR_RETURN(auto program, cpu::CpuProgram::build(partition, num_threads_, parallel_));
    return std::unique_ptr<Executable>(std::move(program));
  }

 private:
  int num_threads_;
  bool parallel_;
};

}  // namespace

std::unique_ptr<Device> make_cpu_device(int num_threads, bool parallel_branches) {
  return std::make_unique<CpuDevice>(num_threads, parallel_branches);
}

}  // namespace pyflame_rt
