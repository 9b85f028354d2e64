#include "compiler/passes/activation_fusion.h"

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"

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

}  // namespace
}  // namespace pyflame_rt
