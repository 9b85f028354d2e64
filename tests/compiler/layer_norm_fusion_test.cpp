#include "compiler/passes/layer_norm_fusion.h"

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

Graph decomposed_layer_norm(bool affine) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {2, 4})};
  g.initializers["two"] = Tensor::scalar<float>(2.0f);
  g.initializers["eps"] = Tensor::scalar<float>(1e-5f);
  g.initializers["gamma"] = Tensor::from_vector<float>({4}, {1, 2, 3, 4});
  g.initializers["beta"] = Tensor::from_vector<float>({4}, {0.5f, 0, -0.5f, 1});
  g.add_node("ReduceMean", {"x"}, {"m"}).attributes["axes"] = Attribute::make_ints({-1});
  g.add_node("Sub", {"x", "m"}, {"d"});
  g.add_node("Pow", {"d", "two"}, {"p"});
  g.add_node("ReduceMean", {"p"}, {"v"}).attributes["axes"] = Attribute::make_ints({-1});
  g.add_node("Add", {"v", "eps"}, {"a"});
  g.add_node("Sqrt", {"a"}, {"s"});
  g.add_node("Div", {"d", "s"}, {"n"});
  std::string out = "n";
  if (affine) {
    g.add_node("Mul", {"n", "gamma"}, {"y"});
    g.add_node("Add", {"y", "beta"}, {"z"});
    out = "z";
  }
  g.outputs = {f32(out, {2, 4})};
  return g;
}

TEST(LayerNormFusionTest, ReplacesTheDecompositionWithOneNode) {
  Graph g = decomposed_layer_norm(true);
  LayerNormFusion pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "LayerNormalization");
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"x", "gamma", "beta"}));
  EXPECT_EQ(g.nodes[0].outputs[0], "z");
  EXPECT_FLOAT_EQ(g.nodes[0].attr_float("epsilon", 0), 1e-5f);
}

TEST(LayerNormFusionTest, FusedAndDecomposedAgree) {
  for (bool affine : {true, false}) {
    Graph a = decomposed_layer_norm(affine), b = decomposed_layer_norm(affine);
    LayerNormFusion pass;
    bool changed = false;
    ASSERT_TRUE(pass.run(b, changed).ok());
    ASSERT_TRUE(changed);
    Tensor x = Tensor::from_vector<float>({2, 4}, {1, -2, 3, 0.5f, 10, 11, 9, 12});
    auto ra = (*RefProgram::build(a, KernelRegistry::reference()))->run({x});
    auto rb = (*RefProgram::build(b, KernelRegistry::reference()))->run({x});
    ASSERT_TRUE(ra.ok() && rb.ok()) << (rb.ok() ? "" : rb.status().to_string());
    for (int i = 0; i < 8; ++i) EXPECT_NEAR((*ra)[0].tensor.data<float>()[i], (*rb)[0].tensor.data<float>()[i], 1e-5);
  }
}

TEST(LayerNormFusionTest, LeavesLookalikesAlone) {
  Graph g = decomposed_layer_norm(true);
  g.initializers["two"] = Tensor::scalar<float>(3.0f);  // cube, not a variance
  LayerNormFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
