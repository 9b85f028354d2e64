#include "compiler/passes/bn_conv_fusion.h"

#include <cmath>

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "ref_compare_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// x [1,4,9] -> Relu -> BatchNorm -> Conv1d (k=3, group g, given pads) -> y: the 1-D audio
// models' block order, with the BatchNorm after the activation.
Graph relu_bn_conv(int64_t group, int64_t pad) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 4, 9})};
  g.initializers["w"] = random_tensor({6, 4 / group, 3}, 1);
  g.initializers["b"] = random_tensor({6}, 2);
  g.initializers["s"] = random_tensor({4}, 3);
  g.initializers["beta"] = random_tensor({4}, 4);
  g.initializers["mean"] = random_tensor({4}, 5);
  Tensor var = random_tensor({4}, 6);
  for (int64_t i = 0; i < 4; ++i) var.data<float>()[i] = std::fabs(var.data<float>()[i]) + 0.2f;
  g.initializers["var"] = var;
  g.add_node("Relu", {"x"}, {"r"});
  g.add_node("BatchNormalization", {"r", "s", "beta", "mean", "var"}, {"n"});
  Node& conv = g.add_node("Conv", {"n", "w", "b"}, {"y"});
  conv.attributes["group"] = Attribute::make_int(group);
  conv.attributes["pads"] = Attribute::make_ints({pad, pad});
  g.outputs = {f32("y", {1, 6, 9 - 2 + 2 * pad})};
  return g;
}

void expect_same_outputs(const Graph& before, const Graph& after) {
  expect_same_outputs(before, after, {Value(random_tensor({1, 4, 9}, 7))});
}

TEST(BnConvFusionTest, FoldsIntoTheUnpaddedConvAfterIt) {
  for (int64_t group : {1, 2}) {
    Graph before = relu_bn_conv(group, 0), after = before;
    BnConvFusion pass;
    bool changed = false;
    run_pass(pass, after, &changed);
    ASSERT_TRUE(changed) << "group " << group;
    ASSERT_EQ(after.nodes.size(), 2u);
    EXPECT_EQ(after.nodes[1].op_type, "Conv");
    EXPECT_EQ(after.nodes[1].inputs[0], "r");  // reads the activation directly
    EXPECT_TRUE(after.check_sorted().ok());
    expect_same_outputs(before, after);
  }
}

TEST(BnConvFusionTest, PaddedConvKeepsTheBatchNorm) {
  // A padded border would see the BatchNorm's shift where its output holds zeros.
  Graph g = relu_bn_conv(1, 1);
  BnConvFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(g.nodes.size(), 3u);
}

TEST(BnConvFusionTest, BatchNormWithAnotherReaderStays) {
  Graph g = relu_bn_conv(1, 0);
  g.outputs.push_back(f32("n", {1, 4, 9}));
  BnConvFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
