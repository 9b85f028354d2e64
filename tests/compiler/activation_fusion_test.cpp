#include "devices/ref/ref_device.h"
#include "compiler/passes/activation_fusion.h"

#include <cmath>
#include <random>

#include "devices/cpu/cpu_device.h"
#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

Graph conv_then(const std::string& act) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 1, 3, 3})};
  g.initializers["w"] = Tensor::from_vector<float>({1, 1, 1, 1}, {2});
  g.add_node("Conv", {"x", "w"}, {"c"});
  if (act == "SiLU") {
    g.add_node("Sigmoid", {"c"}, {"s"});
    g.add_node("Mul", {"c", "s"}, {"y"});
  } else {
    Node& a = g.add_node(act, {"c"}, {"y"});
    if (act == "LeakyRelu") a.attributes["alpha"] = Attribute::make_float(0.25f);
  }
  g.outputs = {f32("y", {1, 1, 3, 3})};
  return g;
}

TEST(ActivationFusionTest, FusesActivationsIntoOneNode) {
  Graph g = conv_then("LeakyRelu");
  ActivationFusion pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[1,1,3,3]) {\n"
            "  init %w = float32[1,1,1,1]{2}\n"
            "  %y = pyflame_rt.FusedConv(%x, %w) {activation=\"LeakyRelu\", activation_params=[0.25]}\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(ActivationFusionTest, FusedGraphsComputeTheSameAsUnfused) {
  std::vector<float> xs = {-2, -1, -0.5f, 0, 0.25f, 0.5f, 1, 2, 3};
  Tensor x = Tensor::from_vector<float>({1, 1, 3, 3}, xs);
  for (const char* act : {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "SiLU"}) {
    Graph plain = conv_then(act), fused = conv_then(act);
    ActivationFusion pass;
    bool changed = false;
    ASSERT_TRUE(pass.run(fused, changed).ok());
    ASSERT_TRUE(changed) << act;
    ASSERT_EQ(fused.nodes.size(), 1u) << act;
    auto a = (*RefProgram::build(plain, KernelRegistry::reference()))->run({x});
    auto b = (*RefProgram::build(fused, KernelRegistry::reference()))->run({x});
    ASSERT_TRUE(a.ok() && b.ok()) << act << (b.ok() ? "" : b.status().to_string());
    for (int i = 0; i < 9; ++i) EXPECT_FLOAT_EQ((*a)[0].tensor.data<float>()[i], (*b)[0].tensor.data<float>()[i]) << act;
  }
}

TEST(ActivationFusionTest, SkipsConvWhoseOutputIsAlsoAGraphOutput) {
  Graph g = conv_then("Relu");
  g.outputs.push_back(f32("c", {1, 1, 3, 3}));
  ActivationFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

// A padded 3x3 Conv with bias (output [1,3,5,5]) then PRelu with `slope`: an initializer, or a
// graph input when `runtime_slope`.
Graph conv_prelu(const Tensor& slope, bool runtime_slope = false) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 2, 5, 5})};
  g.initializers["w"] = random_tensor({3, 2, 3, 3}, 1);
  g.initializers["b"] = random_tensor({3}, 2);
  if (runtime_slope) g.inputs.push_back(f32("s", slope.dims()));
  else g.initializers["s"] = slope;
  Node& conv = g.add_node("Conv", {"x", "w", "b"}, {"c"});
  conv.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.add_node("PRelu", {"c", "s"}, {"y"});
  g.outputs = {f32("y", {1, 3, 5, 5})};
  return g;
}

// FusedMatMul([2,3,4] x [4,5] + bias) then PRelu with the constant `slope`.
Graph matmul_prelu(const Tensor& slope) {
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports["pyflame_rt"] = 1;
  g.inputs = {f32("x", {2, 3, 4})};
  g.initializers["w"] = random_tensor({4, 5}, 3);
  g.initializers["b"] = Tensor::from_vector<float>({5}, {0.1f, -0.2f, 0.3f, -0.4f, 0.f});
  g.initializers["s"] = slope;
  g.add_node("FusedMatMul", {"x", "w", "b"}, {"m"}).domain = "pyflame_rt";
  g.add_node("PRelu", {"m", "s"}, {"y"});
  g.outputs = {f32("y", {2, 3, 5})};
  return g;
}

double max_normalised_error(const Tensor& a, const Tensor& b) {
  double scale = 1e-6, err = 0;
  for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(b.data<float>()[i])));
  for (int64_t i = 0; i < b.numel(); ++i) err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return err / scale;
}

Tensor run_on(Device& device, const Graph& g, const Tensor& x, bool expect_native = false) {
  auto exe = device.compile(g);
  EXPECT_TRUE(exe.ok()) << exe.status().to_string();
  if (!exe.ok()) return Tensor();
  if (expect_native) {
    EXPECT_TRUE((*exe)->fallback_nodes().empty()) << (*exe)->fallback_nodes()[0];
  }
  auto out = (*exe)->run({x});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? (*out)[0].tensor : Tensor();
}

// Fuses `plain`'s PRelu into one node with activation `act`, which computes what the unfused
// graph does: exactly on the reference device, to rounding on the CPU device, where it must run
// on oneDNN rather than on the reference fallback.
void expect_prelu_fuses(const Graph& plain, const std::string& act, const Tensor& x) {
  Graph fused = plain;
  ActivationFusion pass;
  bool changed = false;
  ASSERT_TRUE(pass.run(fused, changed).ok());
  ASSERT_TRUE(changed);
  ASSERT_EQ(fused.nodes.size(), 1u);
  EXPECT_EQ(fused.nodes[0].attr_string("activation", ""), act);
  const Tensor& slope = plain.initializers.at("s");
  EXPECT_EQ(fused.nodes[0].attr_floats("activation_params"),
            std::vector<float>(slope.data<float>(), slope.data<float>() + slope.numel()));
  auto ref = make_ref_device(), cpu = make_cpu_device(2);
  Tensor want = run_on(*ref, plain, x);
  Tensor on_ref = run_on(*ref, fused, x);
  ASSERT_EQ(on_ref.dims(), want.dims());
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_FLOAT_EQ(on_ref.data<float>()[i], want.data<float>()[i]) << i;
  Tensor cpu_plain = run_on(*cpu, plain, x);
  Tensor cpu_fused = run_on(*cpu, fused, x, /*expect_native=*/true);
  ASSERT_EQ(cpu_fused.dims(), want.dims());
  EXPECT_LT(max_normalised_error(cpu_fused, cpu_plain), 1e-5);
  EXPECT_LT(max_normalised_error(cpu_fused, want), 1e-5);
  int negative = 0;  // the slopes must have had something to act on
  for (int64_t i = 0; i < want.numel(); ++i) negative += want.data<float>()[i] < 0;
  EXPECT_GT(negative, 0);
}

TEST(ActivationFusionTest, ChannelwisePReluFusesIntoConv) {
  Tensor x = random_tensor({1, 2, 5, 5}, 10);
  expect_prelu_fuses(conv_prelu(Tensor::from_vector<float>({3, 1, 1}, {0.1f, -0.5f, 2.f})), "PRelu", x);
  expect_prelu_fuses(conv_prelu(Tensor::from_vector<float>({1, 3, 1, 1}, {0.3f, 0.f, 0.7f})), "PRelu", x);
}

TEST(ActivationFusionTest, ScalarPReluFusesAsLeakyRelu) {
  Tensor x = random_tensor({1, 2, 5, 5}, 11);
  expect_prelu_fuses(conv_prelu(Tensor::from_vector<float>({1}, {0.25f})), "LeakyRelu", x);
  expect_prelu_fuses(conv_prelu(Tensor::from_vector<float>({1, 1, 1}, {0.6f})), "LeakyRelu", x);
}

TEST(ActivationFusionTest, PerColumnPReluFusesIntoMatMul) {
  Tensor x = random_tensor({2, 3, 4}, 12);
  expect_prelu_fuses(matmul_prelu(Tensor::from_vector<float>({5}, {0.1f, 0.2f, -0.3f, 0.f, 1.5f})), "PRelu", x);
  expect_prelu_fuses(matmul_prelu(Tensor::from_vector<float>({1, 5}, {0.5f, 0.4f, 0.3f, 0.2f, 0.1f})), "PRelu", x);
}

TEST(ActivationFusionTest, SkipsPReluWithRuntimeOrOtherAxisSlope) {
  std::vector<Graph> graphs = {
      conv_prelu(Tensor::from_vector<float>({3, 1, 1}, {0.1f, 0.2f, 0.3f}), /*runtime_slope=*/true),
      conv_prelu(random_tensor({5}, 20)),     // along the conv output's width
      conv_prelu(random_tensor({5, 1}, 21)),  // along its height
      conv_prelu(random_tensor({1, 3, 5, 5}, 22)),  // one slope per element
      matmul_prelu(random_tensor({3, 1}, 23)),      // along the matmul output's rows
  };
  for (size_t i = 0; i < graphs.size(); ++i) {
    ActivationFusion pass;
    bool changed = true;
    run_pass(pass, graphs[i], &changed);
    EXPECT_FALSE(changed) << i;
    EXPECT_EQ(graphs[i].nodes.size(), 2u) << i;
  }
}

}  // namespace
}  // namespace pyflame_rt
