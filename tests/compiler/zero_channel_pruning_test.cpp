#include "compiler/passes/zero_channel_pruning.h"

#include <cmath>

#include "compiler/pipeline.h"
#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "ref_compare_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// Zeroes output channels `channels` of the convolution weights `w` (and bias `b`) in `g`.
void zero_channels(Graph& g, const std::string& w, const std::string& b, const std::vector<int64_t>& channels) {
  Tensor& wt = g.initializers.at(w);
  int64_t per = wt.numel() / wt.dim(0);
  for (int64_t m : channels) {
    std::fill(wt.data<float>() + m * per, wt.data<float>() + (m + 1) * per, 0.0f);
    if (!b.empty()) g.initializers.at(b).data<float>()[m] = 0.0f;
  }
}

Node& add_conv(Graph& g, const std::string& x, const std::string& w, const std::string& b, const std::string& y,
               int64_t group, int64_t pad) {
  Node& n = g.add_node("Conv", {x, w, b}, {y});
  n.attributes["group"] = Attribute::make_int(group);
  n.attributes["pads"] = Attribute::make_ints({pad, pad, pad, pad});
  return n;
}

// x [1,4,6,6] -> Conv 1x1 (4->8) -> Relu-fused FusedConv -> depthwise 3x3 (8) -> Conv 3x3 (8->3).
Graph expand_depthwise_project() {
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports["pyflame_rt"] = 1;
  g.inputs = {f32("x", {1, 4, 6, 6})};
  g.initializers["w1"] = random_tensor({8, 4, 1, 1}, 1);
  g.initializers["b1"] = random_tensor({8}, 2);
  g.initializers["w2"] = random_tensor({8, 1, 3, 3}, 3);
  g.initializers["b2"] = random_tensor({8}, 4);
  g.initializers["w3"] = random_tensor({3, 8, 3, 3}, 5);
  g.initializers["b3"] = random_tensor({3}, 6);
  Node& expand = add_conv(g, "x", "w1", "b1", "e", 1, 0);
  expand.domain = "pyflame_rt";
  expand.op_type = "FusedConv";
  expand.attributes["activation"] = Attribute::make_string("Clip");
  expand.attributes["activation_params"] = Attribute::make_floats({0.0f, 6.0f});
  add_conv(g, "e", "w2", "b2", "d", 8, 1);
  add_conv(g, "d", "w3", "b3", "y", 1, 1);
  g.outputs = {f32("y", {1, 3, 6, 6})};
  return g;
}

void expect_same_outputs(const Graph& before, const Graph& after) {
  expect_same_outputs(before, after, {Value(random_tensor({1, 4, 6, 6}, 7))});
}

const Tensor& weights_of(const Graph& g, size_t node) { return g.initializers.at(g.nodes[node].inputs[1]); }

TEST(ZeroChannelPruningTest, RemovesZeroChannelsThroughADepthwiseConvolution) {
  Graph before = expand_depthwise_project();
  zero_channels(before, "w1", "b1", {0, 5});
  zero_channels(before, "w2", "b2", {0, 5});  // the depthwise channel is zero for a zero input
  Graph after = before;
  ZeroChannelPruning pass;
  bool changed = false;
  run_pass(pass, after, &changed);
  ASSERT_TRUE(changed);
  EXPECT_EQ(weights_of(after, 0).dims(), (Dims{6, 4, 1, 1}));
  EXPECT_EQ(weights_of(after, 1).dims(), (Dims{6, 1, 3, 3}));
  EXPECT_EQ(after.nodes[1].attr_int("group", 1), 6);
  EXPECT_EQ(weights_of(after, 2).dims(), (Dims{3, 6, 3, 3}));
  EXPECT_TRUE(after.check_sorted().ok());
  expect_same_outputs(before, after);
}

TEST(ZeroChannelPruningTest, DepthwiseBiasKeepsTheChannel) {
  // The depthwise convolution turns the zero channel into its bias: removing it would change
  // what the projection reads.
  Graph g = expand_depthwise_project();
  zero_channels(g, "w1", "b1", {2});
  ZeroChannelPruning pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(weights_of(g, 0).dims(), (Dims{8, 4, 1, 1}));
}

TEST(ZeroChannelPruningTest, ActivationWithNonZeroAtZeroKeepsTheChannel) {
  Graph g = expand_depthwise_project();
  zero_channels(g, "w1", "b1", {1});
  zero_channels(g, "w2", "b2", {1});
  g.nodes[0].attributes["activation"] = Attribute::make_string("Sigmoid");  // sigmoid(0) = 0.5
  g.nodes[0].attributes.erase("activation_params");
  ZeroChannelPruning pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

TEST(ZeroChannelPruningTest, ChannelReadByAnythingButAConvolutionStays) {
  Graph g = expand_depthwise_project();
  zero_channels(g, "w1", "b1", {3});
  zero_channels(g, "w2", "b2", {3});
  g.outputs.push_back(f32("d", {1, 8, 6, 6}));  // the depthwise output is also a result
  ZeroChannelPruning pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);

  Graph h = expand_depthwise_project();
  zero_channels(h, "w1", "b1", {3});
  zero_channels(h, "w2", "b2", {3});
  h.add_node("Add", {"d", "d"}, {"s"});  // a residual-style reader
  h.outputs.push_back(f32("s", {1, 8, 6, 6}));
  run_pass(pass, h, &changed);
  EXPECT_FALSE(changed);
}

TEST(ZeroChannelPruningTest, AllZeroConvolutionKeepsOneChannel) {
  Graph g = expand_depthwise_project();
  zero_channels(g, "w1", "b1", {0, 1, 2, 3, 4, 5, 6, 7});
  zero_channels(g, "w2", "b2", {0, 1, 2, 3, 4, 5, 6, 7});
  ZeroChannelPruning pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

TEST(ZeroChannelPruningTest, WholePipelineFoldsBatchNormThenPrunes) {
  // Conv -> BatchNorm (zero scale and shift on the pruned channels) -> Relu -> Conv: the form
  // channel pruning leaves in an ONNX model.
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 4, 6, 6})};
  g.initializers["w1"] = random_tensor({8, 4, 3, 3}, 1);
  g.initializers["b1"] = random_tensor({8}, 2);
  g.initializers["scale"] = random_tensor({8}, 3);
  g.initializers["shift"] = random_tensor({8}, 4);
  g.initializers["mean"] = random_tensor({8}, 5);
  Tensor var = random_tensor({8}, 6);
  for (int64_t i = 0; i < 8; ++i) var.data<float>()[i] = std::fabs(var.data<float>()[i]) + 0.5f;
  g.initializers["var"] = var;
  g.initializers["w2"] = random_tensor({5, 8, 3, 3}, 7);
  g.initializers["b2"] = random_tensor({5}, 8);
  zero_channels(g, "w1", "b1", {1, 6});
  for (int64_t m : {1, 6}) g.initializers["scale"].data<float>()[m] = g.initializers["shift"].data<float>()[m] = 0;
  add_conv(g, "x", "w1", "b1", "c", 1, 1);
  g.add_node("BatchNormalization", {"c", "scale", "shift", "mean", "var"}, {"n"});
  g.add_node("Relu", {"n"}, {"r"});
  add_conv(g, "r", "w2", "b2", "y", 1, 1);
  g.outputs = {f32("y", {1, 5, 6, 6})};
  Expected<Graph> opt = optimize_graph(g, OptLevel::kAll, {});
  ASSERT_TRUE(opt.ok()) << opt.status().to_string();
  ASSERT_EQ(opt->nodes.size(), 2u);
  EXPECT_EQ(weights_of(*opt, 0).dims(), (Dims{6, 4, 3, 3}));
  EXPECT_EQ(weights_of(*opt, 1).dims(), (Dims{5, 6, 3, 3}));
  Tensor x = random_tensor({1, 4, 6, 6}, 9);
  auto a = (*RefProgram::build(g, KernelRegistry::reference()))->run({x});
  auto b = (*RefProgram::build(*opt, KernelRegistry::reference()))->run({x});
  ASSERT_TRUE(a.ok() && b.ok());
  for (int64_t i = 0; i < (*a)[0].tensor.numel(); ++i) {
    EXPECT_NEAR((*a)[0].tensor.data<float>()[i], (*b)[0].tensor.data<float>()[i], 1e-4) << i;
  }
}

}  // namespace
}  // namespace pyflame_rt
