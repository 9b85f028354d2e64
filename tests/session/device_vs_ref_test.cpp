// Every registered device against the reference device on the same graphs (the CPU-vs-reference
// tests generalised): outputs by normalised error, and where each node actually ran, so that a
// node silently falling back to another device or to a reference kernel fails the test.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "compiler/pipeline.h"
#include "devices/device_registry.h"
#include "devices/ref/ref_device.h"
#include "session/compiled_model.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

struct GraphCase {
  std::string name;
  Graph graph;
  std::vector<Value> feeds;
};

ValueInfo f32(const std::string& name, Dims dims) { return {name, DType::kFloat32, Shape::from_dims(dims)}; }

// Conv -> BatchNorm -> Relu -> MaxPool -> Conv (+ residual) -> GlobalAveragePool -> Flatten -> Gemm
GraphCase small_cnn() {
  GraphCase c{"small_cnn", {}, {}};
  Graph& g = c.graph;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 3, 16, 16})};
  g.initializers["w1"] = random_tensor({8, 3, 3, 3}, 1);
  g.initializers["b1"] = random_tensor({8}, 2);
  g.initializers["w2"] = random_tensor({8, 8, 3, 3}, 3);
  g.initializers["fc"] = random_tensor({8, 10}, 4);
  g.initializers["fcb"] = random_tensor({10}, 5);
  Node& c1 = g.add_node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1");
  c1.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.add_node("Relu", {"c1"}, {"r1"}, "relu1");
  Node& mp = g.add_node("MaxPool", {"r1"}, {"p1"}, "pool1");
  mp.attributes["kernel_shape"] = Attribute::make_ints({2, 2});
  mp.attributes["strides"] = Attribute::make_ints({2, 2});
  Node& c2 = g.add_node("Conv", {"p1", "w2"}, {"c2"}, "conv2");
  c2.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.add_node("Add", {"c2", "p1"}, {"s"}, "residual");
  g.add_node("Relu", {"s"}, {"r2"}, "relu2");
  g.add_node("GlobalAveragePool", {"r2"}, {"gap"}, "gap");
  g.add_node("Flatten", {"gap"}, {"flat"}, "flatten");
  g.add_node("Gemm", {"flat", "fc", "fcb"}, {"y"}, "fc");
  g.outputs = {f32("y", {1, 10})};
  c.feeds = {Value(random_tensor({1, 3, 16, 16}, 9))};
  return c;
}

// MatMul + bias -> LayerNorm -> Softmax: the encoder's building blocks.
GraphCase dense_block() {
  GraphCase c{"dense_block", {}, {}};
  Graph& g = c.graph;
  g.opset_imports[""] = 17;
  g.inputs = {f32("x", {4, 32})};
  g.initializers["w"] = random_tensor({32, 32}, 11);
  g.initializers["b"] = random_tensor({32}, 12);
  g.initializers["gamma"] = random_tensor({32}, 13);
  g.initializers["beta"] = random_tensor({32}, 14);
  g.add_node("MatMul", {"x", "w"}, {"h"}, "mm");
  g.add_node("Add", {"h", "b"}, {"hb"}, "bias");
  Node& ln = g.add_node("LayerNormalization", {"hb", "gamma", "beta"}, {"n"}, "ln");
  ln.attributes["axis"] = Attribute::make_int(-1);
  Node& sm = g.add_node("Softmax", {"n"}, {"y"}, "softmax");
  sm.attributes["axis"] = Attribute::make_int(-1);
  g.outputs = {f32("y", {4, 32})};
  c.feeds = {Value(random_tensor({4, 32}, 15))};
  return c;
}

double normalised_error(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    num += d * d;
    den += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Nodes a device may run on its reference kernels without failing the test: each entry is a
// known gap with its reason. Anything else that is not native fails.
const std::map<std::string, std::set<std::string>>& known_reference_nodes() {
  static const std::map<std::string, std::set<std::string>> known = {};
  return known;
}

class DeviceVsRefTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DeviceVsRefTest, GraphsMatchTheReferenceAndRunWhereClaimed) {
  const std::string device_name = GetParam();
  for (GraphCase c : {small_cnn(), dense_block()}) {
    SCOPED_TRACE(device_name + " / " + c.name);
    auto optimised = optimize_graph(c.graph, OptLevel::kAll, {});
    ASSERT_TRUE(optimised.ok()) << optimised.status().to_string();
    auto device = DeviceRegistry::global().create(device_name, DeviceConfig{});
    ASSERT_TRUE(device.ok()) << device.status().to_string();
    std::shared_ptr<Device> dev = std::move(device).value();
    // What the device says it takes, before compiling: every such node must run on it.
    DeviceClaim claim = dev->claim(*optimised, std::vector<bool>(optimised->nodes.size(), false));
    std::set<std::string> claimed;
    for (const auto& group : claim.groups) for (size_t i : group) claimed.insert(optimised->nodes[i].name);
    std::vector<std::shared_ptr<Device>> devices = {dev, std::shared_ptr<Device>(make_ref_device())};
    auto model = CompiledModel::compile(*optimised, devices, OptLevel::kAll, {});
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    auto ref = make_ref_device()->compile(c.graph);
    ASSERT_TRUE(ref.ok());
    auto got = (*model)->run(c.feeds, RunContext{});
    auto want = (*ref)->run(c.feeds);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_TRUE(want.ok());
    for (size_t i = 0; i < want->size(); ++i) {
      ASSERT_EQ((*got)[i].tensor.dims(), (*want)[i].tensor.dims());
      EXPECT_LT(normalised_error((*got)[i].tensor, (*want)[i].tensor), 1e-5) << "output " << i;
    }
    const auto& allowed = known_reference_nodes();
    auto allowed_here = allowed.count(device_name) ? allowed.at(device_name) : std::set<std::string>{};
    for (const NodeKernel& k : (*model)->node_kernels()) {
      if (!claimed.count(k.node)) continue;
      EXPECT_EQ(k.device, device_name) << k.op_type << " '" << k.node << "' left the device it was claimed by";
      if (!allowed_here.count(k.op_type)) {
        EXPECT_EQ(k.kernel, "native") << k.op_type << " '" << k.node << "' fell back to a reference kernel";
      }
    }
  }
}

std::vector<std::string> devices_under_test() {
  std::vector<std::string> names;
  for (const auto& n : DeviceRegistry::global().device_names()) {
    const DeviceEntry* e = DeviceRegistry::global().find(n);
    if (e->listed) names.push_back(n);
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(EveryDevice, DeviceVsRefTest, ::testing::ValuesIn(devices_under_test()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pyflame_rt
