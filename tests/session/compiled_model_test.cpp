// CompiledModel: a graph placed on two devices runs its partitions as device actors and gives
// the single-device result; the placement is reported node by node and survives serialisation.
#include "session/compiled_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "devices/cpu/cpu_device.h"
#include "devices/ref/ref_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// Runs only Relu and MatMul (float32) on the reference kernels: a stand-in accelerator.
class NarrowDevice : public Device {
 public:
  NarrowDevice() {
    caps_.dtypes = {DType::kFloat32};
    caps_.ops = {{"", "Relu"}, {"", "MatMul"}};
  }
  std::string name() const override { return "narrow"; }
  const DeviceCapabilities& capabilities() const override { return caps_; }
  Expected<std::unique_ptr<Executable>> compile(const Graph& g) override { return make_ref_device()->compile(g); }

 private:
  DeviceCapabilities caps_;
};

void register_narrow_once() {
  static bool done = [] {
    DeviceEntry e;
    e.name = "narrow";
    e.provider = "NarrowTestProvider";
    e.listed = false;
    e.create = [](const DeviceConfig&) -> Expected<std::unique_ptr<Device>> {
      return std::unique_ptr<Device>(new NarrowDevice());
    };
    return DeviceRegistry::global().add(e).ok();
  }();
  ASSERT_TRUE(done);
}

// y = Sigmoid(Relu(x @ w1)) @ w2, then Relu: narrow, narrow, cpu, narrow, narrow.
Graph mlp() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {{"x", DType::kFloat32, Shape::from_dims({3, 8})}};
  g.initializers["w1"] = random_tensor({8, 16}, 1);
  g.initializers["w2"] = random_tensor({16, 4}, 2);
  g.add_node("MatMul", {"x", "w1"}, {"h"}, "mm1");
  g.add_node("Relu", {"h"}, {"hr"}, "relu1");
  g.add_node("Sigmoid", {"hr"}, {"hs"}, "sig");
  g.add_node("MatMul", {"hs", "w2"}, {"o"}, "mm2");
  g.add_node("Relu", {"o"}, {"y"}, "relu2");
  g.outputs = {{"y", DType::kFloat32, Shape::from_dims({3, 4})}};
  return g;
}

std::vector<Value> feed() { return {Value(random_tensor({3, 8}, 7))}; }

void expect_close(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dims(), b.dims());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-5) << i;
}

TEST(CompiledModelTest, TwoDevicesGiveTheOneDeviceResult) {
  register_narrow_once();
  std::vector<std::shared_ptr<Device>> both = {std::make_shared<NarrowDevice>(), make_cpu_device(1)};
  auto split = CompiledModel::compile(mlp(), both, OptLevel::kAll, {});
  ASSERT_TRUE(split.ok()) << split.status().to_string();
  ASSERT_EQ((*split)->partitions().size(), 3u);
  EXPECT_EQ((*split)->devices_used(), (std::vector<std::string>{"narrow", "cpu"}));
  auto whole = CompiledModel::compile(mlp(), {make_cpu_device(1)}, OptLevel::kAll, {});
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ((*whole)->partitions().size(), 1u);
  // Several runs: the actors are reused and keep no state between frames.
  for (int i = 0; i < 3; ++i) {
    auto a = (*split)->run(feed(), RunContext{});
    auto b = (*whole)->run(feed(), RunContext{});
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    ASSERT_TRUE(b.ok());
    expect_close((*a)[0].tensor, (*b)[0].tensor);
  }
}

TEST(CompiledModelTest, NodeKernelsSayWhereEachNodeRan) {
  std::vector<std::shared_ptr<Device>> both = {std::make_shared<NarrowDevice>(), make_cpu_device(1)};
  auto model = CompiledModel::compile(mlp(), both, OptLevel::kAll, {});
  ASSERT_TRUE(model.ok());
  std::map<std::string, std::string> device_of;
  for (const auto& k : (*model)->node_kernels()) device_of[k.node] = k.device;
  EXPECT_EQ(device_of["mm1"], "narrow");
  EXPECT_EQ(device_of["relu1"], "narrow");
  EXPECT_EQ(device_of["sig"], "cpu");
  EXPECT_EQ(device_of["mm2"], "narrow");
  EXPECT_EQ(device_of["relu2"], "narrow");
  std::vector<std::string> fallbacks = (*model)->fallback_nodes();
  ASSERT_FALSE(fallbacks.empty());
  EXPECT_EQ(fallbacks[0], "Sigmoid 'sig': not on narrow: op 'Sigmoid' (opset 13) is not supported");
}

TEST(CompiledModelTest, SerialisedModelRunsTheSame) {
  register_narrow_once();
  std::vector<std::shared_ptr<Device>> both = {std::make_shared<NarrowDevice>(), make_cpu_device(1)};
  auto model = CompiledModel::compile(mlp(), both, OptLevel::kAll, {});
  ASSERT_TRUE(model.ok());
  auto bytes = (*model)->serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto back = CompiledModel::deserialize(*bytes, DeviceConfig{});
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ((*back)->partitions().size(), 3u);
  EXPECT_EQ((*back)->fallback_nodes(), (*model)->fallback_nodes());
  auto a = (*model)->run(feed(), RunContext{});
  auto b = (*back)->run(feed(), RunContext{});
  ASSERT_TRUE(a.ok() && b.ok());
  expect_close((*a)[0].tensor, (*b)[0].tensor);
  auto garbage = CompiledModel::deserialize("not a model", DeviceConfig{});
  EXPECT_FALSE(garbage.ok());
}

TEST(CompiledModelTest, TerminateStopsTheRun) {
  std::vector<std::shared_ptr<Device>> both = {std::make_shared<NarrowDevice>(), make_cpu_device(1)};
  auto model = CompiledModel::compile(mlp(), both, OptLevel::kAll, {});
  ASSERT_TRUE(model.ok());
  std::atomic<bool> stop{true};
  RunContext ctx;
  ctx.terminate = &stop;
  auto r = (*model)->run(feed(), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFail);
  EXPECT_NE(r.status().message().find("terminated"), std::string::npos) << r.status().message();
  stop = false;
  EXPECT_TRUE((*model)->run(feed(), ctx).ok());  // the model stays usable
}

}  // namespace
}  // namespace pyflame_rt
