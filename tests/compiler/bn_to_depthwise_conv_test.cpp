#include "compiler/passes/bn_to_depthwise_conv.h"

#include <cmath>

#include "compiler/pipeline.h"
#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// x [2,6,5,5] -> BatchNorm -> Relu -> y (DenseNet's pre-activation before each 1x1 conv), and
// the BatchNorm's output also a graph output when `bn_is_output`.
Graph bn_relu(bool bn_is_output) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {2, 6, 5, 5})};
  g.initializers["s"] = random_tensor({6}, 3);
  g.initializers["beta"] = random_tensor({6}, 4);
  g.initializers["mean"] = random_tensor({6}, 5);
  Tensor var = random_tensor({6}, 6);
  for (int64_t i = 0; i < 6; ++i) var.data<float>()[i] = std::fabs(var.data<float>()[i]) + 0.2f;
  g.initializers["var"] = var;
  g.add_node("BatchNormalization", {"x", "s", "beta", "mean", "var"}, {"n"}, "bn").attributes["epsilon"] =
      Attribute::make_float(1e-3f);
  g.add_node("Relu", {"n"}, {"y"}, "relu");
  g.value_info["n"] = f32("n", {2, 6, 5, 5});
  g.outputs = {f32("y", {2, 6, 5, 5})};
  if (bn_is_output) g.outputs.push_back(f32("n", {2, 6, 5, 5}));
  return g;
}

std::vector<Value> run_ref(const Graph& g) {
  auto out = (*RefProgram::build(g, KernelRegistry::reference()))->run({random_tensor({2, 6, 5, 5}, 7)});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::vector<Value>{};
}

TEST(BnToDepthwiseConvTest, BatchNormReadByAnActivationBecomesADepthwiseConvAndFusesIt) {
  Graph before = bn_relu(false), after = before;
  BnToDepthwiseConv pass;
  bool changed = false;
  run_pass(pass, after, &changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(after.nodes[0].op_type, "Conv");
  EXPECT_EQ(after.nodes[0].attr_int("group", 1), 6);
  EXPECT_TRUE(after.check_sorted().ok());
  auto a = run_ref(before), b = run_ref(after);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  for (int64_t i = 0; i < a[0].tensor.numel(); ++i) {
    EXPECT_NEAR(a[0].tensor.data<float>()[i], b[0].tensor.data<float>()[i], 1e-5) << i;
  }
  // In the pipeline the Relu then folds into it: one FusedConv with the activation.
  auto optimized = optimize_graph(before, OptLevel::kExtended, {});
  ASSERT_TRUE(optimized.ok()) << optimized.status().to_string();
  ASSERT_EQ(optimized->nodes.size(), 1u);
  EXPECT_EQ(optimized->nodes[0].op_type, "FusedConv");
  EXPECT_EQ(optimized->nodes[0].attr_string("activation", ""), "Relu");
}

TEST(BnToDepthwiseConvTest, LeavesABatchNormWhoseOutputIsAlsoReadElsewhere) {
  Graph g = bn_relu(true);
  BnToDepthwiseConv pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(g.nodes[0].op_type, "BatchNormalization");
}

}  // namespace
}  // namespace pyflame_rt
