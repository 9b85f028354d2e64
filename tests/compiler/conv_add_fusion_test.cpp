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
