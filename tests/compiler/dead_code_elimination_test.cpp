#include "compiler/passes/dead_code_elimination.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

TEST(DeadCodeEliminationTest, DropsUnusedChainsAndInitializers) {
  Graph g;
  g.inputs = {f32("x", {2})};
  g.initializers["unused_w"] = Tensor::from_vector<float>({2}, {1, 2});
  g.initializers["b"] = Tensor::from_vector<float>({2}, {3, 4});
  g.add_node("Add", {"x", "b"}, {"y"});
  g.add_node("Mul", {"x", "unused_w"}, {"dead1"});
  g.add_node("Relu", {"dead1"}, {"dead2"});
  g.outputs = {f32("y", {2})};
  DeadCodeElimination dce;
  bool changed = false;
  EXPECT_EQ(run_pass(dce, g, &changed),
            "graph main (%x: float32[2]) {\n"
            "  init %b = float32[2]{3,4}\n"
            "  %y = Add(%x, %b)\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(DeadCodeEliminationTest, KeepsValuesReadBySubgraphs) {
  auto body = std::make_shared<Graph>();
  body->add_node("Relu", {"outer"}, {"r"});
  body->outputs = {f32("r", {2})};
  Graph g;
  g.inputs = {{"c", DType::kBool, Shape::from_dims({})}, f32("x", {2})};
  g.add_node("Neg", {"x"}, {"outer"});
  g.add_node("If", {"c"}, {"y"}).attributes["then_branch"] = Attribute::make_graph(body);
  g.nodes.back().attributes["else_branch"] = Attribute::make_graph(body);
  g.outputs = {f32("y", {2})};
  DeadCodeElimination dce;
  bool changed = true;
  run_pass(dce, g, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(g.nodes.size(), 2u);
}

}  // namespace
}  // namespace pyflame_rt
