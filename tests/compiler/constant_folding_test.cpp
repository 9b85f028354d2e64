#include "compiler/passes/constant_folding.h"

#include <chrono>

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

// A session's memory limit and run deadline bound folding too (FoldLimits): what passes them
// is left to the run, as it is past the fold's own bounds (kernel_run stop 17: an Upsample
// held every mutation at creation for the fold's whole 5 s, then failed its run at 64 MB).
TEST(ConstantFoldingTest, StaysWithinTheSessionsMemoryLimitAndDeadline) {
  auto graph = [] {
    Graph g;
    g.opset_imports[""] = 17;
    g.initializers["one"] = Tensor::from_vector<float>({1}, {1.5f});
    g.initializers["shape"] = Tensor::from_vector<int64_t>({2}, {512, 1024});  // 2 MB of float
    g.add_node("Expand", {"one", "shape"}, {"wide"});
    // 16 M outputs of a linear Resize on the reference: seconds, past a 50 ms deadline.
    g.initializers["x"] = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
    g.initializers["roi"] = Tensor::from_vector<float>({0}, {});
    g.initializers["scales"] = Tensor::from_vector<float>({4}, {1, 1, 2048, 2048});
    Node& r = g.add_node("Resize", {"x", "roi", "scales"}, {"big"});
    r.attributes["mode"] = Attribute::make_string("linear");
    g.outputs = {f32("wide", {512, 1024}), f32("big", {1, 1, 4096, 4096})};
    return g;
  };
  {  // the session's 1 MB: the 2 MB Expand is not folded
    Graph g = graph();
    g.nodes.pop_back();
    g.outputs.pop_back();
    ConstantFolding pass(FoldLimits{1 << 20, 0});
    bool changed = true;
    run_pass(pass, g, &changed);
    EXPECT_FALSE(changed);
    ASSERT_EQ(g.nodes.size(), 1u);
    EXPECT_EQ(g.initializers.count("wide"), 0u);
  }
  {  // the session's 50 ms: the Resize (64 MB, within the fold's own bounds) is given up
    Graph g = graph();
    g.nodes.erase(g.nodes.begin());
    g.outputs.erase(g.outputs.begin());
    ConstantFolding pass(FoldLimits{0, 50});
    bool changed = true;
    const auto start = std::chrono::steady_clock::now();
    run_pass(pass, g, &changed);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_FALSE(changed);
    ASSERT_EQ(g.nodes.size(), 1u);
    EXPECT_EQ(g.initializers.count("big"), 0u);
    EXPECT_LT(seconds, 1.5) << "the fold passed the session's 50 ms deadline by far";
  }
  {  // limits larger than the fold's own change nothing: the Expand is folded
    Graph g = graph();
    g.nodes.pop_back();
    g.outputs.pop_back();
    ConstantFolding pass(FoldLimits{int64_t{1} << 40, 60000});
    bool changed = false;
    run_pass(pass, g, &changed);
    EXPECT_TRUE(changed);
    ASSERT_EQ(g.initializers.count("wide"), 1u);
    EXPECT_EQ(g.initializers.at("wide").dims(), (Dims{512, 1024}));
  }
}

}  // namespace
}  // namespace pyflame_rt
