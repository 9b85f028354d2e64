#include "compiler/passes/transpose_reshape_folding.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

TEST(TransposeReshapeFoldingTest, ComposesTransposesAndDropsIdentity) {
  Graph g;
  g.inputs = {f32("x", {2, 3, 4})};
  g.add_node("Transpose", {"x"}, {"t1"}).attributes["perm"] = Attribute::make_ints({1, 2, 0});
  g.add_node("Transpose", {"t1"}, {"t2"}).attributes["perm"] = Attribute::make_ints({2, 0, 1});  // undoes t1
  g.add_node("Relu", {"t2"}, {"r"});
  g.add_node("Transpose", {"r"}, {"u1"}).attributes["perm"] = Attribute::make_ints({0, 2, 1});
  g.add_node("Transpose", {"u1"}, {"y"}).attributes["perm"] = Attribute::make_ints({1, 0, 2});
  g.outputs = {f32("y", {4, 2, 3})};
  TransposeReshapeFolding pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[2,3,4]) {\n"
            "  %r = Relu(%x)\n"
            "  %y = Transpose(%r) {perm=[2,0,1]}\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(TransposeReshapeFoldingTest, MergesReshapesUnlessTheTargetCopiesDims) {
  Graph g;
  g.inputs = {f32("x", {2, 6})};
  g.initializers["s1"] = Tensor::from_vector<int64_t>({2}, {3, 4});
  g.initializers["s2"] = Tensor::from_vector<int64_t>({1}, {12});
  g.initializers["s3"] = Tensor::from_vector<int64_t>({2}, {0, -1});
  g.add_node("Reshape", {"x", "s1"}, {"a"});
  g.add_node("Reshape", {"a", "s2"}, {"b"});
  g.add_node("Reshape", {"b", "s3"}, {"y"});  // 0 copies a dim of b: must stay
  g.outputs = {f32("y", {12})};
  TransposeReshapeFolding pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"x", "s2"}));
  EXPECT_EQ(g.nodes[1].inputs, (std::vector<std::string>{"b", "s3"}));
}

}  // namespace
}  // namespace pyflame_rt
