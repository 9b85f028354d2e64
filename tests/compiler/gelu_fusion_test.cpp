#include "compiler/passes/gelu_fusion.h"

#include <cmath>

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

Graph erf_gelu() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {5})};
  g.initializers["sqrt2"] = Tensor::scalar<float>(1.4142135f);
  g.initializers["one"] = Tensor::scalar<float>(1.0f);
  g.initializers["half"] = Tensor::scalar<float>(0.5f);
  g.add_node("Div", {"x", "sqrt2"}, {"d"});
  g.add_node("Erf", {"d"}, {"e"});
  g.add_node("Add", {"e", "one"}, {"a"});
  g.add_node("Mul", {"x", "a"}, {"m"});
  g.add_node("Mul", {"m", "half"}, {"y"});
  g.outputs = {f32("y", {5})};
  return g;
}

TEST(GeluFusionTest, ErfFormBecomesOneGeluNodeWithTheSameValues) {
  Graph g = erf_gelu();
  GeluFusion pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].domain, "com.microsoft");
  EXPECT_EQ(g.nodes[0].op_type, "Gelu");
  EXPECT_EQ(g.nodes[0].inputs, std::vector<std::string>{"x"});
  Tensor x = Tensor::from_vector<float>({5}, {-3, -0.5f, 0, 0.7f, 2.5f});
  auto a = (*RefProgram::build(erf_gelu(), KernelRegistry::reference()))->run({x});
  auto b = (*RefProgram::build(g, KernelRegistry::reference()))->run({x});
  ASSERT_TRUE(a.ok() && b.ok()) << (b.ok() ? "" : b.status().to_string());
  for (int i = 0; i < 5; ++i) EXPECT_NEAR((*a)[0].tensor.data<float>()[i], (*b)[0].tensor.data<float>()[i], 1e-6);
}

TEST(GeluFusionTest, OtherConstantsAreNotGelu) {
  Graph g = erf_gelu();
  g.initializers["half"] = Tensor::scalar<float>(0.25f);
  GeluFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
