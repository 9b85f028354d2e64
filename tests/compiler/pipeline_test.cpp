#include "compiler/pipeline.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

Graph shape_chain() {
  // y = Reshape(x, Concat(Shape(x)[0:1], [-1])): all shape arithmetic folds for a static x.
  Graph g;
  g.opset_imports[""] = 15;
  g.inputs = {f32("x", {2, 3, 4})};
  Node& s = g.add_node("Shape", {"x"}, {"s"});
  s.attributes["end"] = Attribute::make_int(1);
  g.initializers["minus1"] = Tensor::from_vector<int64_t>({1}, {-1});
  g.add_node("Concat", {"s", "minus1"}, {"target"}).attributes["axis"] = Attribute::make_int(0);
  g.add_node("Identity", {"target"}, {"target2"});
  g.add_node("Reshape", {"x", "target2"}, {"y"});
  g.outputs = {f32("y", {2, 12})};
  return g;
}

TEST(PipelineTest, BasicFoldsShapeArithmeticToOneNode) {
  auto g = optimize_graph(shape_chain(), OptLevel::kBasic, {});
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(print_graph(*g),
            "graph main (%x: float32[2,3,4]) {\n"
            "  init %target = int64[2]{2,-1}\n"
            "  %y = Reshape(%x, %target)\n"
            "  return %y\n"
            "}\n");
}

TEST(PipelineTest, NoneLeavesGraphAlone) {
  auto g = optimize_graph(shape_chain(), OptLevel::kNone, {});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->nodes.size(), 4u);
}

TEST(PipelineTest, DisabledPassIsSkippedAndUnknownNameRejected) {
  auto g = optimize_graph(shape_chain(), OptLevel::kAll, {"shape_folding"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->nodes.size(), 3u);  // Shape stays, so Concat cannot fold; Identity went
  auto bad = optimize_graph(shape_chain(), OptLevel::kAll, {"no_such_pass"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'no_such_pass'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("constant_folding"), std::string::npos);
}

}  // namespace
}  // namespace pyflame_rt
