// The reference device: runs any graph through the plain reference kernels.
#include "devices/device.h"
#include "devices/ref/ref_program.h"

#include <chrono>

namespace pyflame_rt {

Expected<std::vector<Value>> Executable::run_profiled(std::vector<Value> inputs,
                                                       std::vector<NodeTiming>* timings) const {
  auto start = std::chrono::steady_clock::now();
  auto out = run(std::move(inputs));
  timings->push_back({"whole graph", "Graph",
                      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count()});
  return out;
}

namespace {

class RefExecutable : public Executable {
 public:
  explicit RefExecutable(std::shared_ptr<RefProgram> program) : program_(std::move(program)) {}
  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override {
    return program_->run(std::move(inputs));
  }

 private:
  std::shared_ptr<RefProgram> program_;
};

class RefDevice : public Device {
 public:
  std::string name() const override { return "ref"; }
  bool supports_op(const Node& node, int64_t) const override {
    return KernelRegistry::reference().find(node.domain, node.op_type) != nullptr;
  }
  Expected<std::unique_ptr<Executable>> compile(const Graph& partition) override {
    ASSIGN_OR_RETURN(auto program, RefProgram::build(partition, KernelRegistry::reference()));
    return std::unique_ptr<Executable>(new RefExecutable(std::move(program)));
  }
};

}  // namespace

std::unique_ptr<Device> make_ref_device() { return std::make_unique<RefDevice>(); }

}  // namespace pyflame_rt
