#include "compiler/passes/conv_add_fusion.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

TEST(ConvAddFusionTest, ResidualAddBecomesFusedConvInput) {
  Graph g;
  g.inputs = {f32("x", {1, 2, 4, 4}), f32("z", {1, 2, 4, 4})};
  g.initializers["w"] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.add_node("Conv", {"x", "w"}, {"c"});
  g.add_node("Add", {"z", "c"}, {"y"});
  g.value_info["c"] = f32("c", {1, 2, 4, 4});
  g.outputs = {f32("y", {1, 2, 4, 4})};
  ConvAddFusion pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[1,2,4,4], %z: float32[1,2,4,4]) {\n"
            "  init %w = float32[2,2,1,1]{0,0,0,0}\n"
            "  %y = pyflame_rt.FusedConv(%x, %w, _, %z)\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
  EXPECT_EQ(g.opset("pyflame_rt"), 1);
}

// RegNet's residual block: the projection shortcut is made before the branch it is added to,
// so the fused projection reads the branch's output and must move to the Add's place.
Graph projection_block() {
  Graph g;
  g.inputs = {f32("x", {1, 2, 4, 4})};
  g.initializers["wp"] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.initializers["wa"] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.initializers["wc"] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.add_node("Conv", {"x", "wp"}, {"p"}, "proj");
  g.add_node("Conv", {"x", "wa"}, {"a"}, "a");
  g.add_node("Relu", {"a"}, {"ar"}, "a_relu");
  g.add_node("Conv", {"ar", "wc"}, {"c"}, "c");
  g.add_node("Add", {"p", "c"}, {"s"}, "add");
  g.add_node("Relu", {"s"}, {"y"}, "out_relu");
  for (const char* v : {"p", "a", "ar", "c", "s"}) g.value_info[v] = f32(v, {1, 2, 4, 4});
  g.outputs = {f32("y", {1, 2, 4, 4})};
  return g;
}

TEST(ConvAddFusionTest, FusedProducerTakesTheAddsPlaceToStaySorted) {
  Graph g = projection_block();
  ConvAddFusion pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[1,2,4,4]) {\n"
            "  init %wa = float32[2,2,1,1]{0,0,0,0}\n"
            "  init %wc = float32[2,2,1,1]{0,0,0,0}\n"
            "  init %wp = float32[2,2,1,1]{0,0,0,0}\n"
            "  %a = Conv(%x, %wa)\n"
            "  %ar = Relu(%a)\n"
            "  %c = Conv(%ar, %wc)\n"
            "  %s = pyflame_rt.FusedConv(%x, %wp, _, %c)\n"
            "  %y = Relu(%s)\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
  Status st = g.check_sorted();
  EXPECT_TRUE(st.ok()) << st.to_string();
}

TEST(ConvAddFusionTest, BroadcastingAddIsLeftAlone) {
  Graph g;
  g.inputs = {f32("x", {1, 2, 4, 4}), f32("z", {1, 2, 1, 1})};
  g.initializers["w"] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.add_node("Conv", {"x", "w"}, {"c"});
  g.add_node("Add", {"c", "z"}, {"y"});
  g.value_info["c"] = f32("c", {1, 2, 4, 4});
  g.outputs = {f32("y", {1, 2, 4, 4})};
  ConvAddFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
