#include "compiler/passes/shape_folding.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

TEST(ShapeFoldingTest, FoldsStaticShapesAndSizes) {
  Graph g;
  g.inputs = {f32("x", {2, 3, 4})};
  Node& s = g.add_node("Shape", {"x"}, {"tail"});
  s.attributes["start"] = Attribute::make_int(-2);
  g.add_node("Size", {"x"}, {"n"});
  g.outputs = {{"tail", DType::kInt64, Shape::from_dims({2})}, {"n", DType::kInt64, Shape::from_dims({})}};
  ShapeFolding pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[2,3,4]) {\n"
            "  init %n = int64[]{24}\n"
            "  init %tail = int64[2]{3,4}\n"
            "  return %tail, %n\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(ShapeFoldingTest, LeavesSymbolicShapes) {
  Graph g;
  Shape sym;
  sym.dims = {Dim(std::string("batch")), Dim(3)};
  g.inputs = {{"x", DType::kFloat32, sym}};
  g.add_node("Shape", {"x"}, {"s"});
  g.outputs = {{"s", DType::kInt64, Shape::from_dims({2})}};
  ShapeFolding pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
