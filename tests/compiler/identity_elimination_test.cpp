#include "compiler/passes/identity_elimination.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

TEST(IdentityEliminationTest, RewiresConsumersAroundPassThroughNodes) {
  Graph g;
  g.inputs = {f32("x", {2})};
  g.add_node("Identity", {"x"}, {"a"});
  g.add_node("Dropout", {"a"}, {"b", ""});
  Node& cast = g.add_node("Cast", {"b"}, {"c"});
  cast.attributes["to"] = Attribute::make_int(static_cast<int64_t>(DType::kFloat32));
  g.add_node("Relu", {"c"}, {"y"});
  g.outputs = {f32("y", {2})};
  g.value_info["b"] = f32("b", {2});
  IdentityElimination pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[2]) {\n"
            "  %y = Relu(%x)\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(IdentityEliminationTest, KeepsGraphOutputsRealCastsAndUsedMasks) {
  Graph g;
  g.inputs = {f32("x", {2})};
  g.add_node("Identity", {"x"}, {"y"});  // a graph output: the name must survive
  Node& cast = g.add_node("Cast", {"x"}, {"h"});
  cast.attributes["to"] = Attribute::make_int(static_cast<int64_t>(DType::kFloat16));
  g.add_node("Dropout", {"x"}, {"d", "mask"});
  g.outputs = {f32("y", {2}), {"h", DType::kFloat16, Shape::from_dims({2})}, f32("mask", {2})};
  IdentityElimination pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(g.nodes.size(), 3u);
}

TEST(IdentityEliminationTest, DropoutInTrainingModeIsAPassThroughOnlyWithRatioZero) {
  // torch exports F.dropout(p=0.0, training=True) as Dropout(x, 0.0, true): the identity.
  for (float ratio : {0.0f, 0.1f}) {
    Graph g;
    g.inputs = {f32("x", {2})};
    g.initializers["ratio"] = Tensor::from_vector<float>({}, {ratio});
    g.initializers["training"] = Tensor::from_vector<bool>({}, {true});
    g.add_node("Dropout", {"x", "ratio", "training"}, {"d", "mask"});
    g.add_node("Relu", {"d"}, {"y"});
    g.outputs = {f32("y", {2})};
    IdentityElimination pass;
    bool changed = false;
    run_pass(pass, g, &changed);
    EXPECT_EQ(changed, ratio == 0.0f) << ratio;
    EXPECT_EQ(g.nodes.size(), ratio == 0.0f ? 1u : 2u) << ratio;
  }
}

TEST(IdentityEliminationTest, PadWithZeroPadsIsAPassThrough) {
  // torch's AvgPool2d export (DenseNet's transitions): Pad(x, zeros) -> AveragePool.
  for (int64_t pad : {0, 1}) {
    Graph g;
    g.inputs = {f32("x", {1, 2, 4, 4})};
    g.initializers["pads"] = Tensor::from_vector<int64_t>({8}, {0, 0, 0, 0, 0, 0, pad, pad});
    g.add_node("Pad", {"x", "pads"}, {"p"});
    g.add_node("Relu", {"p"}, {"y"});
    g.outputs = {f32("y", {1, 2, 4 + pad, 4 + pad})};
    IdentityElimination pass;
    bool changed = false;
    run_pass(pass, g, &changed);
    EXPECT_EQ(changed, pad == 0) << pad;
    ASSERT_EQ(g.nodes.size(), pad == 0 ? 1u : 2u) << pad;
    EXPECT_EQ(g.nodes.back().inputs[0], pad == 0 ? "x" : "p");
  }
  Graph g;  // opset 2's attribute form
  g.inputs = {f32("x", {1, 2})};
  Node& pad = g.add_node("Pad", {"x"}, {"p"});
  pad.attributes["pads"] = Attribute::make_ints({0, 0, 0, 0});
  g.add_node("Relu", {"p"}, {"y"});
  g.outputs = {f32("y", {1, 2})};
  IdentityElimination pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  EXPECT_TRUE(changed);
  EXPECT_EQ(g.nodes.size(), 1u);
}

}  // namespace
}  // namespace pyflame_rt
