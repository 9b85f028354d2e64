#include "compiler/passes/constant_folding.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

TEST(ConstantFoldingTest, FoldsConstantSubexpressions) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {2})};
  g.initializers["a"] = Tensor::from_vector<float>({2}, {1, 2});
  g.initializers["b"] = Tensor::from_vector<float>({2}, {10, 20});
  g.add_node("Add", {"a", "b"}, {"ab"});
  g.add_node("Mul", {"x", "ab"}, {"y"});
  g.outputs = {f32("y", {2})};
  ConstantFolding pass;
  bool changed = false;
  EXPECT_EQ(run_pass(pass, g, &changed),
            "graph main (%x: float32[2]) {\n"
            "  init %a = float32[2]{1,2}\n"
            "  init %ab = float32[2]{11,22}\n"
            "  init %b = float32[2]{10,20}\n"
            "  %y = Mul(%x, %ab)\n"
            "  return %y\n"
            "}\n");
  EXPECT_TRUE(changed);
}

TEST(ConstantFoldingTest, LeavesRandomOpsAndFailingNodes) {
  Graph g;
  g.opset_imports[""] = 13;
  Node& r = g.add_node("RandomUniform", {}, {"noise"});
  r.attributes["shape"] = Attribute::make_ints({2});
  g.initializers["s"] = Tensor::from_vector<int64_t>({2}, {4, 2});
  g.initializers["v"] = Tensor::from_vector<float>({3}, {1, 2, 3});
  g.add_node("Reshape", {"v", "s"}, {"bad"});  // 3 elements into [4,2]: fails at run time
  g.outputs = {f32("noise", {2}), f32("bad", {4, 2})};
  ConstantFolding pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(g.nodes.size(), 2u);
}

TEST(ConstantFoldingTest, KeepsTheCastOfHalfWeightsIntoAConvolution) {
  // The quantizer's bf16 weights: folding the Cast would make them fp32 again. The bias's Cast
  // (not a weight input) folds as before.
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 1, 2, 2})};
  Tensor w(DType::kBFloat16, {1, 1, 1, 1});
  static_cast<uint16_t*>(w.raw_data())[0] = BFloat16::from_float(2.0f);
  Tensor b(DType::kBFloat16, {1});
  static_cast<uint16_t*>(b.raw_data())[0] = BFloat16::from_float(0.5f);
  g.initializers["w16"] = w;
  g.initializers["b16"] = b;
  g.add_node("Cast", {"w16"}, {"w"}).attributes["to"] = Attribute::make_int(1);
  g.add_node("Cast", {"b16"}, {"b"}).attributes["to"] = Attribute::make_int(1);
  g.add_node("Conv", {"x", "w", "b"}, {"y"});
  g.outputs = {f32("y", {1, 1, 2, 2})};
  ConstantFolding pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  EXPECT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op_type, "Cast");
  EXPECT_EQ(g.nodes[0].inputs[0], "w16");
  ASSERT_TRUE(g.initializers.count("b"));
  EXPECT_EQ(g.initializers.at("b").dtype(), DType::kFloat32);
  EXPECT_FALSE(g.initializers.count("w"));
}

TEST(ConstantFoldingTest, FoldsTheCastOfHalfWeightsReadAsAnActivation) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {1, 1, 1, 1})};
  Tensor w(DType::kFloat16, {1, 1, 1, 1});
  static_cast<uint16_t*>(w.raw_data())[0] = Float16::from_float(2.0f);
  g.initializers["w16"] = w;
  g.add_node("Cast", {"w16"}, {"w"}).attributes["to"] = Attribute::make_int(1);
  g.add_node("Conv", {"w", "x"}, {"y"});  // the half tensor is the data input here
  g.outputs = {f32("y", {1, 1, 1, 1})};
  ConstantFolding pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Conv");
  EXPECT_EQ(g.initializers.at("w").dtype(), DType::kFloat32);
}

// A constant chooses how much a folded kernel allocates: a HammingWindow of size 2^31 made a
// 16 GB buffer at compile time, outside any memory_limit_mb, before its result could be judged
// too large to keep (kernel_run). Evaluation runs under kFoldMemoryBytes: the node stays in the
// graph, for the run and its own limit; a small window is still folded.
TEST(ConstantFoldingTest, LeavesNodesWhoseEvaluationPassesTheFoldsMemoryBound) {
  Graph g;
  g.opset_imports[""] = 17;
  g.initializers["big"] = Tensor::scalar<int64_t>(int64_t{1} << 31);
  g.initializers["small"] = Tensor::scalar<int64_t>(4);
  g.add_node("HammingWindow", {"big"}, {"w_big"});
  g.add_node("HammingWindow", {"small"}, {"w_small"});
  g.outputs = {f32("w_big", {1 << 30}), f32("w_small", {4})};
  ConstantFolding pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  EXPECT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].outputs[0], "w_big");
  ASSERT_EQ(g.initializers.count("w_small"), 1u);
  EXPECT_EQ(g.initializers.at("w_small").dims(), (Dims{4}));
  EXPECT_EQ(g.initializers.count("w_big"), 0u);
}

}  // namespace
}  // namespace pyflame_rt
