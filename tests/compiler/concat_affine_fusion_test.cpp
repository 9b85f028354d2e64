#include "compiler/passes/concat_affine_fusion.h"

#include <cmath>

#include "compiler/pipeline.h"
#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// DenseNet's dense layer input: Concat(a [2,3,4,4], b [2,5,4,4]) along `axis` -> BatchNorm ->
// Relu -> y; the concatenated value is also a graph output when `concat_is_output`.
Graph concat_bn_relu(int64_t axis, bool concat_is_output) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("a", {2, 3, 4, 4}), f32("b", {2, 5, 4, 4})};
  Dims cat = {2, 8, 4, 4};
  if (axis == 1) {
    g.initializers["s"] = random_tensor({8}, 3);
    g.initializers["beta"] = random_tensor({8}, 4);
    g.initializers["mean"] = random_tensor({8}, 5);
    Tensor var = random_tensor({8}, 6);
    for (int64_t i = 0; i < 8; ++i) var.data<float>()[i] = std::fabs(var.data<float>()[i]) + 0.2f;
    g.initializers["var"] = var;
  } else {  // axis 3: a [2,3,4,4] and b [2,3,4,5] would not join; batch both as [2,3,4,4]
    g.inputs[1] = f32("b", {2, 3, 4, 4});
    cat = {2, 3, 4, 8};
    g.initializers["s"] = random_tensor({3}, 3);
    g.initializers["beta"] = random_tensor({3}, 4);
    g.initializers["mean"] = random_tensor({3}, 5);
    g.initializers["var"] = Tensor::from_vector<float>({3}, {0.5f, 1.f, 2.f});
  }
  g.add_node("Concat", {"a", "b"}, {"cat"}, "concat").attributes["axis"] = Attribute::make_int(axis);
  g.add_node("BatchNormalization", {"cat", "s", "beta", "mean", "var"}, {"n"}, "bn");
  g.add_node("Relu", {"n"}, {"y"}, "relu");
  g.value_info["cat"] = f32("cat", cat);
  g.value_info["n"] = f32("n", cat);
  g.outputs = {f32("y", cat)};
  if (concat_is_output) g.outputs.push_back(f32("cat", cat));
  return g;
}

std::vector<Value> run_ref(const Graph& g) {
  Dims b;
  for (const Dim& d : g.inputs[1].shape.dims) b.push_back(d.value);
  std::vector<Value> feeds = {random_tensor({2, 3, 4, 4}, 7), random_tensor(b, 8)};
  auto out = (*RefProgram::build(g, KernelRegistry::reference()))->run(feeds);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::vector<Value>{};
}

TEST(ConcatAffineFusionTest, ConcatReadByBatchNormAndReluBecomesOneFusedConcat) {
  Graph before = concat_bn_relu(1, false);
  auto after = optimize_graph(before, OptLevel::kExtended, {});
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  ASSERT_EQ(after->nodes.size(), 1u) << print_graph(*after);
  const Node& n = after->nodes[0];
  EXPECT_EQ(n.domain, "pyflame_rt");
  EXPECT_EQ(n.op_type, "FusedConcat");
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(n.outputs, (std::vector<std::string>{"y"}));
  EXPECT_EQ(n.attr_string("activation", ""), "Relu");
  EXPECT_EQ(n.attr_floats("scale").size(), 8u);
  EXPECT_TRUE(after->check_sorted().ok());
  EXPECT_EQ(after->value_info.count("cat"), 0u);  // the concatenated value no longer exists
  auto a = run_ref(before), b = run_ref(*after);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(a[0].tensor.dims(), b[0].tensor.dims());
  int64_t zeros = 0;
  for (int64_t i = 0; i < a[0].tensor.numel(); ++i) {
    EXPECT_NEAR(a[0].tensor.data<float>()[i], b[0].tensor.data<float>()[i], 1e-5) << i;
    zeros += b[0].tensor.data<float>()[i] == 0.f;
  }
  EXPECT_GT(zeros, 0);  // the Relu clipped something: it is part of what was compared
}

TEST(ConcatAffineFusionTest, FusesTheDepthwiseConvFormWithoutActivation) {
  // A 1x1 depthwise Conv straight on a Concat (no Relu): scale = weights, shift = bias.
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("a", {1, 2, 3, 3}), f32("b", {1, 2, 3, 3})};
  g.initializers["w"] = Tensor::from_vector<float>({4, 1, 1, 1}, {1.f, 2.f, 3.f, 4.f});
  g.initializers["bias"] = Tensor::from_vector<float>({4}, {0.5f, 0.f, -1.f, 2.f});
  g.add_node("Concat", {"a", "b"}, {"cat"}, "concat").attributes["axis"] = Attribute::make_int(1);
  g.add_node("Conv", {"cat", "w", "bias"}, {"y"}, "dw").attributes["group"] = Attribute::make_int(4);
  g.value_info["cat"] = f32("cat", {1, 4, 3, 3});
  g.outputs = {f32("y", {1, 4, 3, 3})};
  ConcatAffineFusion pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%a: float32[1,2,3,3], %b: float32[1,2,3,3]) {\n"
            "  init %bias = float32[4]{0.5,0,-1,2}\n"
            "  init %w = float32[4,1,1,1]{1,2,3,4}\n"
            "  %y = pyflame_rt.FusedConcat(%a, %b) {axis=1, scale=[1,2,3,4], shift=[0.5,0,-1,2]}\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(ConcatAffineFusionTest, LeavesConcatsReadElsewhereOrNotAlongChannels) {
  for (auto [axis, output] : std::vector<std::pair<int64_t, bool>>{{1, true}, {3, false}}) {
    auto after = optimize_graph(concat_bn_relu(axis, output), OptLevel::kExtended, {});
    ASSERT_TRUE(after.ok()) << after.status().to_string();
    for (const Node& n : after->nodes) EXPECT_NE(n.op_type, "FusedConcat") << "axis " << axis;
  }
}

}  // namespace
}  // namespace pyflame_rt
