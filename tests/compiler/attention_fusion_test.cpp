#include "compiler/passes/attention_fusion.h"

#include <random>

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "ref_compare_util.h"

namespace pyflame_rt {
namespace {

constexpr int64_t kB = 2, kL = 5, kS = 7, kH = 2, kDh = 3, kE = kH * kDh;

Tensor i64(std::vector<int64_t> v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); }

// The textbook batch-first attention over projected q [B,L,E], k and v [B,S,E]:
//   softmax(Q K^T / sqrt(Dh) + mask) V, heads split by Reshape + Transpose and joined back.
// scale_operands: Q and K each multiplied by 0.5 instead (torch 2's SDPA export).
Graph textbook_attention(bool with_mask, bool scale_operands = false) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("q", {kB, kL, kE}), f32("k", {kB, kS, kE}), f32("v", {kB, kS, kE})};
  if (with_mask) g.inputs.push_back(f32("mask", {kL, kS}));
  g.initializers["split_q"] = i64({kB, kL, kH, kDh});
  g.initializers["split_kv"] = i64({0, 0, kH, -1});
  g.initializers["join"] = i64({0, 0, kE});
  g.initializers["sqrt_dh"] = Tensor::scalar<float>(std::sqrt(static_cast<float>(kDh)));
  g.add_node("Reshape", {"q", "split_q"}, {"qr"});
  g.add_node("Reshape", {"k", "split_kv"}, {"kr"});
  g.add_node("Reshape", {"v", "split_kv"}, {"vr"});
  g.add_node("Transpose", {"qr"}, {"qh"}).attributes["perm"] = Attribute::make_ints({0, 2, 1, 3});
  g.add_node("Transpose", {"kr"}, {"kt"}).attributes["perm"] = Attribute::make_ints({0, 2, 3, 1});
  g.add_node("Transpose", {"vr"}, {"vh"}).attributes["perm"] = Attribute::make_ints({0, 2, 1, 3});
  if (scale_operands) {
    g.initializers["root_scale"] = Tensor::scalar<float>(0.5f);
    g.add_node("Mul", {"qh", "root_scale"}, {"qs"});
    g.add_node("Mul", {"root_scale", "kt"}, {"ks"});
    g.add_node("MatMul", {"qs", "ks"}, {"scores"});
  } else {
    g.add_node("MatMul", {"qh", "kt"}, {"qk"});
    g.add_node("Div", {"qk", "sqrt_dh"}, {"scores"});
  }
  std::string logits = "scores";
  if (with_mask) {
    g.add_node("Add", {"scores", "mask"}, {"masked"});
    logits = "masked";
  }
  g.add_node("Softmax", {logits}, {"p"}).attributes["axis"] = Attribute::make_int(-1);
  g.add_node("MatMul", {"p", "vh"}, {"o"});
  g.add_node("Transpose", {"o"}, {"ot"}).attributes["perm"] = Attribute::make_ints({0, 2, 1, 3});
  g.add_node("Reshape", {"ot", "join"}, {"y"});
  g.outputs = {f32("y", {kB, kL, kE})};
  return g;
}

// torch.nn.MultiheadAttention's export (sequence first) of self-attention: q, k, v sliced
// out of one packed projection [L,B,3E] (shape inference leaves the slices unshaped), the
// scale applied to Q before the product, heads as [L, B*H, Dh].
Graph torch_attention() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("qkv", {kL, kB, 3 * kE})};
  g.initializers["last_axis"] = i64({-1});
  for (int64_t i = 0; i <= 3; ++i) g.initializers["at" + std::to_string(i)] = i64({i * kE});
  const char* names[] = {"q", "k", "v"};
  for (int64_t i = 0; i < 3; ++i) {
    g.add_node("Slice", {"qkv", "at" + std::to_string(i), "at" + std::to_string(i + 1), "last_axis"}, {names[i]});
    g.value_info[names[i]] = {names[i], DType::kFloat32, Shape::unknown_rank()};  // as the importer leaves it
  }
  g.initializers["split_q"] = i64({kL, kB * kH, kDh});
  g.initializers["split_kv"] = i64({kL, kB * kH, kDh});
  g.initializers["join"] = i64({kL * kB, kE});
  g.initializers["sqrt_dh"] = Tensor::scalar<float>(std::sqrt(static_cast<float>(kDh)));
  g.add_node("Reshape", {"q", "split_q"}, {"qr"});
  g.add_node("Reshape", {"k", "split_kv"}, {"kr"});
  g.add_node("Reshape", {"v", "split_kv"}, {"vr"});
  g.add_node("Transpose", {"qr"}, {"qh"}).attributes["perm"] = Attribute::make_ints({1, 0, 2});
  g.add_node("Transpose", {"kr"}, {"kt"}).attributes["perm"] = Attribute::make_ints({1, 2, 0});
  g.add_node("Transpose", {"vr"}, {"vh"}).attributes["perm"] = Attribute::make_ints({1, 0, 2});
  g.add_node("Div", {"qh", "sqrt_dh"}, {"qs"});
  g.add_node("MatMul", {"qs", "kt"}, {"scores"});
  g.add_node("Softmax", {"scores"}, {"p"}).attributes["axis"] = Attribute::make_int(-1);
  g.add_node("MatMul", {"p", "vh"}, {"o"});
  g.add_node("Transpose", {"o"}, {"ot"}).attributes["perm"] = Attribute::make_ints({1, 0, 2});
  g.add_node("Reshape", {"ot", "join"}, {"y"});
  g.outputs = {f32("y", {kL * kB, kE})};
  return g;
}

Tensor random_tensor(const Dims& dims, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  Tensor t(DType::kFloat32, dims);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Runs both graphs on the reference device with the same random feeds (shaped as g's inputs).
void expect_same_results(const Graph& unfused, const Graph& fused) {
  std::vector<Value> feeds;
  uint32_t seed = 7;
  for (const auto& in : unfused.inputs) {
    Dims dims;
    for (const Dim& d : in.shape.dims) dims.push_back(d.value);
    feeds.emplace_back(random_tensor(dims, seed++));
  }
  expect_same_outputs(unfused, fused, feeds);
}

const Node* find_op(const Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) if (n.op_type == op) return &n;
  return nullptr;
}

TEST(AttentionFusionTest, FusesTheTextbookPatternWithMask) {
  for (bool with_mask : {false, true}) {
    Graph g = textbook_attention(with_mask);
    Graph original = g;
    AttentionFusion pass;
    bool changed = false;
    run_pass(pass, g, &changed);
    ASSERT_TRUE(changed) << "mask=" << with_mask;
    ASSERT_EQ(g.nodes.size(), 2u) << print_graph(g);  // the attention and the closing Reshape
    const Node* mha = find_op(g, "MultiHeadAttention");
    ASSERT_NE(mha, nullptr);
    EXPECT_EQ(mha->domain, "pyflame_rt");
    std::vector<std::string> inputs = {"q", "k", "v"};
    if (with_mask) inputs.push_back("mask");
    EXPECT_EQ(mha->inputs, inputs);
    EXPECT_EQ(mha->attr_int("num_heads", 0), kH);
    EXPECT_EQ(mha->attr_int("batch_first", -1), 1);
    EXPECT_FLOAT_EQ(mha->attr_float("scale", 0), 1.0f / std::sqrt(static_cast<float>(kDh)));
    expect_same_results(original, g);
  }
}

TEST(AttentionFusionTest, FusesTorchsSequenceFirstExport) {
  Graph g = torch_attention();
  Graph original = g;
  AttentionFusion pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 5u) << print_graph(g);  // three Slices, the attention, the Reshape
  const Node* mha = find_op(g, "MultiHeadAttention");
  ASSERT_NE(mha, nullptr);
  EXPECT_EQ(mha->attr_int("num_heads", 0), kH);
  EXPECT_EQ(mha->attr_int("batch_first", -1), 0);
  expect_same_results(original, g);
}

// torch 2's scaled_dot_product_attention export scales Q and K each by sqrt(scale).
TEST(AttentionFusionTest, FoldsScalesOnBothOperandsIntoOne) {
  Graph g = textbook_attention(false, /*scale_operands=*/true);
  Graph original = g;
  AttentionFusion pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_TRUE(changed);
  const Node* mha = find_op(g, "MultiHeadAttention");
  ASSERT_NE(mha, nullptr);
  EXPECT_FLOAT_EQ(mha->attr_float("scale", 0), 0.25f);
  expect_same_results(original, g);
}

TEST(AttentionFusionTest, LeavesAnIntermediateWithASecondReaderAlone) {
  Graph g = textbook_attention(false);
  g.outputs.push_back(f32("p", {kB, kH, kL, kS}));  // the attention weights are wanted too
  std::string before = print_graph(g);
  AttentionFusion pass;
  bool changed = true;
  EXPECT_EQ(run_pass(pass, g, &changed), before);
  EXPECT_FALSE(changed);
}

TEST(AttentionFusionTest, LeavesOtherHeadLayoutsAlone) {
  Graph g = textbook_attention(false);
  for (auto& n : g.nodes) {
    if (n.outputs[0] == "kt") n.attributes["perm"] = Attribute::make_ints({0, 2, 1, 3});  // K not transposed
  }
  AttentionFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

TEST(AttentionFusionTest, LeavesAMaskThatGrowsTheScoresAlone) {
  Graph g = textbook_attention(true);
  g.inputs.back() = f32("mask", {3, kH, kL, kS});  // a batch of 3 against B = 2
  AttentionFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
