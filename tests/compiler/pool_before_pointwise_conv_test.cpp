#include "compiler/passes/pool_before_pointwise_conv.h"

#include "compiler/pipeline.h"
#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "ref_compare_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// x [1, 6, 8, 8] -> 1x1 Conv (6 -> 4, bias) -> AveragePool `kernel`/`stride` -> y.
Graph conv_pool(std::vector<int64_t> kernel = {2, 2}, std::vector<int64_t> stride = {2, 2}, bool bias = true) {
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {f32("x", {1, 6, 8, 8})};
  g.initializers["w"] = random_tensor({4, 6, 1, 1}, 1);
  if (bias) g.initializers["b"] = random_tensor({4}, 2);
  Node& conv = g.add_node("Conv", {"x", "w", bias ? "b" : ""}, {"c"}, "conv");
  conv.attributes["kernel_shape"] = Attribute::make_ints({1, 1});
  conv.attributes["pads"] = Attribute::make_ints({0, 0, 0, 0});
  Node& pool = g.add_node("AveragePool", {"c"}, {"y"}, "pool");
  pool.attributes["kernel_shape"] = Attribute::make_ints(kernel);
  pool.attributes["strides"] = Attribute::make_ints(stride);
  pool.attributes["pads"] = Attribute::make_ints({0, 0, 0, 0});
  const int64_t oh = (8 - kernel[0]) / stride[0] + 1, ow = (8 - kernel[1]) / stride[1] + 1;
  g.value_info["c"] = f32("c", {1, 4, 8, 8});
  g.outputs = {f32("y", {1, 4, oh, ow})};
  return g;
}

void expect_same_outputs(const Graph& before, const Graph& after) {
  expect_same_outputs(before, after, {Value(random_tensor({1, 6, 8, 8}, 3))});
}

TEST(PoolBeforePointwiseConvTest, PoolsFirstAndComputesTheSame) {
  for (auto [kernel, stride] : {std::pair<std::vector<int64_t>, std::vector<int64_t>>{{2, 2}, {2, 2}},
                                {{3, 3}, {2, 2}}, {{2, 1}, {2, 1}}}) {
    for (bool bias : {true, false}) {
      Graph before = conv_pool(kernel, stride, bias), g = conv_pool(kernel, stride, bias);
      PoolBeforePointwiseConv pass;
      bool changed = false;
      run_pass(pass, g, &changed);
      ASSERT_TRUE(changed);
      ASSERT_EQ(g.nodes.size(), 2u);
      EXPECT_EQ(g.nodes[0].op_type, "AveragePool");
      EXPECT_EQ(g.nodes[0].inputs[0], "x");
      EXPECT_EQ(g.nodes[1].op_type, "Conv");
      EXPECT_EQ(g.nodes[1].inputs[0], g.nodes[0].outputs[0]);
      EXPECT_EQ(g.nodes[1].outputs[0], "y");
      EXPECT_EQ(g.nodes[1].name, "conv");
      // The pooled input's type: x's batch and channels, y's spatial size.
      const ValueInfo* t = g.find_value_info(g.nodes[0].outputs[0]);
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->shape, Shape::from_dims({1, 6, g.outputs[0].shape.dims[2].value, g.outputs[0].shape.dims[3].value}));
      EXPECT_EQ(g.find_value_info("c"), nullptr);
      EXPECT_TRUE(g.check_sorted().ok());
      expect_same_outputs(before, g);
    }
  }
}

TEST(PoolBeforePointwiseConvTest, LeavesWhatDoesNotCommuteOrDoesNotPay) {
  auto unchanged = [](Graph g, const char* what) {
    PoolBeforePointwiseConv pass;
    bool changed = true;
    run_pass(pass, g, &changed);
    EXPECT_FALSE(changed) << what;
  };
  Graph padded = conv_pool();
  padded.nodes[1].attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  unchanged(padded, "a padded pool (the border windows average zeros the conv's bias does not have)");
  Graph ceil = conv_pool();
  ceil.nodes[1].attributes["ceil_mode"] = Attribute::make_int(1);
  unchanged(ceil, "ceil_mode");
  Graph same = conv_pool({3, 3}, {1, 1});
  unchanged(same, "a stride-1 pool (as many pixels after)");
  Graph strided = conv_pool();
  strided.nodes[0].attributes["strides"] = Attribute::make_ints({2, 2});
  unchanged(strided, "a strided conv");
  Graph k3 = conv_pool();
  k3.initializers["w"] = random_tensor({4, 6, 3, 3}, 1);
  k3.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({3, 3});
  k3.nodes[0].attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  unchanged(k3, "a 3x3 conv");
  Graph read_twice = conv_pool();
  read_twice.outputs.push_back(f32("c", {1, 4, 8, 8}));
  unchanged(read_twice, "a conv output read elsewhere");
  Graph activated = conv_pool();
  activated.nodes[0].domain = "pyflame_rt";
  activated.nodes[0].op_type = "FusedConv";
  activated.nodes[0].attributes["activation"] = Attribute::make_string("Relu");
  activated.opset_imports["pyflame_rt"] = 1;
  unchanged(activated, "a conv with a fused Relu");
  Graph max = conv_pool();
  max.nodes[1].op_type = "MaxPool";
  unchanged(max, "a max pool");
}

// In the pipeline (EXTENDED): torch's AvgPool2d export puts a zero Pad between (removed
// first), and the graph stays valid.
// kernel_run (stop 21): strides whose product overflows int64 (UBSan: signed overflow in the
// pass). Such a pool has one output pixel per row and column; pooling first is still right.
TEST(PoolBeforePointwiseConvTest, HugeStridesDoNotOverflowAndComputeTheSame) {
  const int64_t huge = int64_t{1} << 62;
  Graph before = conv_pool({2, 2}, {huge, 4}), g = conv_pool({2, 2}, {huge, 4});
  PoolBeforePointwiseConv pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  EXPECT_TRUE(changed);
  expect_same_outputs(before, g);
}

TEST(PoolBeforePointwiseConvTest, RunsInTheExtendedPipeline) {
  Graph g = conv_pool();
  g.initializers["pads"] = Tensor::from_vector<int64_t>({8}, {0, 0, 0, 0, 0, 0, 0, 0});
  g.nodes[1].inputs[0] = "padded";
  Node pad;
  pad.op_type = "Pad";
  pad.name = "pad";
  pad.inputs = {"c", "pads"};
  pad.outputs = {"padded"};
  g.nodes.insert(g.nodes.begin() + 1, pad);
  g.value_info["padded"] = f32("padded", {1, 4, 8, 8});
  Graph before = g;
  set_verify_passes(true);
  auto optimized = optimize_graph(g, OptLevel::kExtended, {});
  ASSERT_TRUE(optimized.ok()) << optimized.status().to_string();
  g = std::move(*optimized);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op_type, "AveragePool");
  EXPECT_EQ(g.nodes[1].op_type, "Conv");
  expect_same_outputs(before, g);
}

}  // namespace
}  // namespace pyflame_rt
