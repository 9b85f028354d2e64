// The reference device: runs any graph through the plain reference kernels.
#include "devices/ref/ref_device.h"

#include "devices/device_registry.h"
#include "devices/ref/ref_program.h"

namespace pyflame_rt {

namespace {

class RefExecutable : public Executable {
 public:
  explicit RefExecutable(std::shared_ptr<RefProgram> program) : program_(std::move(program)) {}
  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override {
    return program_->run(std::move(inputs));
  }
  std::vector<NodeKernel> node_kernels() const override {
    std::vector<NodeKernel> out;
    for (const Node& n : program_->graph().nodes) out.push_back({n.name, n.op_type, "ref", "native"});
    return out;
  }

 private:
  std::shared_ptr<RefProgram> program_;
};

class RefDevice : public Device {
 public:
  std::string name() const override { return "ref"; }
  const DeviceCapabilities& capabilities() const override {
    static const DeviceCapabilities caps = [] {
      DeviceCapabilities c;
      c.any_op = true;
      return c;
    }();
    return caps;
  }
  Expected<std::unique_ptr<Executable>> compile(const Graph& partition) override {
    ASSIGN_OR_RETURN(auto program, RefProgram::build(partition, KernelRegistry::reference()));
    return std::unique_ptr<Executable>(new RefExecutable(std::move(program)));
  }
};

}  // namespace

std::unique_ptr<Device> make_ref_device() { return std::make_unique<RefDevice>(); }

DeviceEntry ref_device_entry() {
  DeviceEntry e;
  e.name = "ref";
  e.provider = "ReferenceExecutionProvider";
  e.summary = "plain C++ reference kernels: the correctness oracle";
  e.listed = false;
  e.create = [](const DeviceConfig&) -> Expected<std::unique_ptr<Device>> { return make_ref_device(); };
  return e;
}

}  // namespace pyflame_rt
