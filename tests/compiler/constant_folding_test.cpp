#include "compiler/passes/constant_folding.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

TEST(ConstantFoldingTest, FoldsConstantSubexpressions) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {2})};
  g.initializers["a"] = Tensor::from_vector<float>({2}, {1, 2});
  g.initializers["b"] = Tensor::from_vector<float>({2}, {10, 20});
  g.add_node("Add", {"a", "b"}, {"ab"});
  g.add_node("Mul", {"x", "ab"}, {"y"});
  g.outputs = {f32("y", {2})};
  ConstantFolding pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[2]) {\n"
            "  init %a = float32[2]{1,2}\n"
            "  init %ab = float32[2]{11,22}\n"
            "  init %b = float32[2]{10,20}\n"
            "  %y = Mul(%x, %ab)\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(ConstantFoldingTest, LeavesRandomOpsAndFailingNodes) {
  Graph g;
  g.opset_imports[""] = 13;
  Node& r = g.add_node("RandomUniform", {}, {"noise"});
  r.attributes["shape"] = Attribute::make_ints({2});
  g.initializers["s"] = Tensor::from_vector<int64_t>({2}, {4, 2});
  g.initializers["v"] = Tensor::from_vector<float>({3}, {1, 2, 3});
  g.add_node("Reshape", {"v", "s"}, {"bad"});  // 3 elements into [4,2]: fails at run time
  g.outputs = {f32("noise", {2}), f32("bad", {4, 2})};
  ConstantFolding pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(g.nodes.size(), 2u);
}

}  // namespace
}  // namespace pyflame_rt
