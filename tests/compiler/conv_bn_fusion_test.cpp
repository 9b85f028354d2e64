#include "compiler/passes/conv_bn_fusion.h"

#include <cmath>

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

Graph conv_bn() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 2, 3, 3})};
  g.initializers["w"] = Tensor::from_vector<float>({2, 2, 1, 1}, {1, 2, 3, 4});
  g.initializers["b"] = Tensor::from_vector<float>({2}, {0.5f, -0.5f});
  g.initializers["s"] = Tensor::from_vector<float>({2}, {2, 3});
  g.initializers["beta"] = Tensor::from_vector<float>({2}, {1, -1});
  g.initializers["mean"] = Tensor::from_vector<float>({2}, {0.25f, 0.75f});
  g.initializers["var"] = Tensor::from_vector<float>({2}, {4, 9});
  g.add_node("Conv", {"x", "w", "b"}, {"c"});
  g.add_node("BatchNormalization", {"c", "s", "beta", "mean", "var"}, {"y"}).attributes["epsilon"] = Attribute::make_float(0);
  g.outputs = {f32("y", {1, 2, 3, 3})};
  return g;
}

TEST(ConvBnFusionTest, FoldsIntoWeightsAndBias) {
  Graph g = conv_bn();
  ConvBnFusion pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Conv");
  EXPECT_EQ(g.nodes[0].outputs[0], "y");
  // k = s / sqrt(var) = [1, 1]: weights unchanged; bias = (b - mean) * k + beta.
  const Tensor& nb = g.initializers.at(g.nodes[0].inputs[2]);
  EXPECT_FLOAT_EQ(nb.data<float>()[0], (0.5f - 0.25f) * 1 + 1);
  EXPECT_FLOAT_EQ(nb.data<float>()[1], (-0.5f - 0.75f) * 1 - 1);
}

TEST(ConvBnFusionTest, FusedGraphComputesTheSame) {
  Graph before = conv_bn(), after = conv_bn();
  ConvBnFusion pass;
  bool changed = false;
  ASSERT_TRUE(pass.run(after, changed).ok());
  std::vector<float> xs(18);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i) * 0.3f - 2.0f;
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 3}, xs);
  auto a = (*RefProgram::build(before, KernelRegistry::reference()))->run({x});
  auto b = (*RefProgram::build(after, KernelRegistry::reference()))->run({x});
  ASSERT_TRUE(a.ok() && b.ok());
  for (int64_t i = 0; i < 18; ++i) EXPECT_NEAR((*a)[0].tensor.data<float>()[i], (*b)[0].tensor.data<float>()[i], 1e-5);
}

TEST(ConvBnFusionTest, SkipsWhenConvOutputHasOtherReaders) {
  Graph g = conv_bn();
  g.outputs.push_back(f32("c", {1, 2, 3, 3}));
  ConvBnFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
