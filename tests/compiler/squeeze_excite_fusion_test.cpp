#include "compiler/passes/squeeze_excite_fusion.h"

#include "compiler/pipeline.h"
#include "devices/ref/ref_program.h"
#include "pass_test_util.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// EfficientNet's squeeze-excite as torch exports it: x [2,8,5,5] -> GlobalAveragePool -> Conv
// 8->2 -> SiLU (Sigmoid + Mul) -> Conv 2->8 -> Sigmoid -> Mul(x, gate). With `x_times_gate`
// false the Mul's operands come the other way round; with `pool_is_output` the pooled value is
// also a graph output.
Graph squeeze_excite(bool x_times_gate, bool pool_is_output) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("x", {2, 8, 5, 5})};
  g.initializers["w1"] = random_tensor({2, 8, 1, 1}, 3);
  g.initializers["b1"] = random_tensor({2}, 4);
  g.initializers["w2"] = random_tensor({8, 2, 1, 1}, 5);
  g.initializers["b2"] = random_tensor({8}, 6);
  g.add_node("GlobalAveragePool", {"x"}, {"p"}, "pool");
  g.add_node("Conv", {"p", "w1", "b1"}, {"c1"}, "fc1");
  g.add_node("Sigmoid", {"c1"}, {"s1"}, "sig1");
  g.add_node("Mul", {"c1", "s1"}, {"h"}, "silu");
  g.add_node("Conv", {"h", "w2", "b2"}, {"c2"}, "fc2");
  g.add_node("Sigmoid", {"c2"}, {"gate"}, "sig2");
  g.add_node("Mul", x_times_gate ? std::vector<std::string>{"x", "gate"} : std::vector<std::string>{"gate", "x"}, {"y"},
             "scale");
  for (const char* v : {"p", "c1", "s1", "h", "c2", "gate"}) {
    g.value_info[v] = f32(v, {2, std::string(v) == "c1" || std::string(v) == "s1" || std::string(v) == "h" ? 2 : 8, 1, 1});
  }
  g.outputs = {f32("y", {2, 8, 5, 5})};
  if (pool_is_output) g.outputs.push_back(f32("p", {2, 8, 1, 1}));
  return g;
}

std::vector<Value> run_ref(const Graph& g) {
  auto out = (*RefProgram::build(g, KernelRegistry::reference()))->run({random_tensor({2, 8, 5, 5}, 7)});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::vector<Value>{};
}

TEST(SqueezeExciteFusionTest, PoolTwoPointwiseConvsAndMulBecomeOneNode) {
  for (bool x_first : {true, false}) {
    Graph before = squeeze_excite(x_first, false);
    auto after = optimize_graph(before, OptLevel::kExtended, {});
    ASSERT_TRUE(after.ok()) << after.status().to_string();
    ASSERT_EQ(after->nodes.size(), 1u) << print_graph(*after);
    const Node& n = after->nodes[0];
    EXPECT_EQ(n.domain, "pyflame_rt");
    EXPECT_EQ(n.op_type, "SqueezeExcite");
    EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w1", "b1", "w2", "b2"}));
    EXPECT_EQ(n.attr_string("activation", ""), "SiLU");
    EXPECT_EQ(n.attr_string("gate", ""), "Sigmoid");
    EXPECT_TRUE(after->check_sorted().ok());
    auto a = run_ref(before), b = run_ref(*after);
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    ASSERT_EQ(a[0].tensor.dims(), b[0].tensor.dims());
    for (int64_t i = 0; i < a[0].tensor.numel(); ++i) {
      EXPECT_NEAR(a[0].tensor.data<float>()[i], b[0].tensor.data<float>()[i], 1e-5) << i;
    }
  }
}

TEST(SqueezeExciteFusionTest, LeavesTheBlockWhenAnIntermediateIsReadElsewhere) {
  auto after = optimize_graph(squeeze_excite(true, true), OptLevel::kExtended, {});
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  for (const Node& n : after->nodes) EXPECT_NE(n.op_type, "SqueezeExcite");
  EXPECT_EQ(after->nodes.size(), 4u) << print_graph(*after);  // pool, fc1 (SiLU), fc2 (Sigmoid), Mul
}

// A 1-D squeeze-excite as a speaker model exports it: x [1,8,30] -> ReduceMean over time
// (axes {2} or {-1}, an attribute at opset 13, a constant input at 18) -> Conv1d 8->2 -> Relu
// -> Conv1d 2->8 -> Sigmoid -> Mul. A ReduceMean that is not the spatial mean with its axes kept
// (over the channels too, or keepdims 0) leaves the block alone.
Graph squeeze_excite_1d(int64_t opset, std::vector<int64_t> axes, int64_t keepdims) {
  Graph g;
  g.opset_imports[""] = opset;
  g.inputs = {f32("x", {1, 8, 30})};
  g.initializers["w1"] = random_tensor({2, 8, 1}, 13);
  g.initializers["b1"] = random_tensor({2}, 14);
  g.initializers["w2"] = random_tensor({8, 2, 1}, 15);
  g.initializers["b2"] = random_tensor({8}, 16);
  if (opset >= 18) {
    g.initializers["axes"] = Tensor::from_vector<int64_t>({static_cast<int64_t>(axes.size())}, axes);
    g.add_node("ReduceMean", {"x", "axes"}, {"p"}, "pool").attributes["keepdims"] = Attribute::make_int(keepdims);
  } else {
    Node& pool = g.add_node("ReduceMean", {"x"}, {"p"}, "pool");
    pool.attributes["axes"] = Attribute::make_ints(axes);
    pool.attributes["keepdims"] = Attribute::make_int(keepdims);
  }
  g.add_node("Conv", {"p", "w1", "b1"}, {"c1"}, "fc1");
  g.add_node("Relu", {"c1"}, {"h"}, "relu");
  g.add_node("Conv", {"h", "w2", "b2"}, {"c2"}, "fc2");
  g.add_node("Sigmoid", {"c2"}, {"gate"}, "sig");
  g.add_node("Mul", {"x", "gate"}, {"y"}, "scale");
  g.value_info["p"] = f32("p", {1, 8, 1});
  for (const char* v : {"c1", "h"}) g.value_info[v] = f32(v, {1, 2, 1});
  for (const char* v : {"c2", "gate"}) g.value_info[v] = f32(v, {1, 8, 1});
  g.outputs = {f32("y", {1, 8, 30})};
  return g;
}

TEST(SqueezeExciteFusionTest, OneDimensionalBlockWithReduceMeanBecomesOneNode) {
  struct Conf { int64_t opset; std::vector<int64_t> axes; };
  for (const Conf& f : {Conf{13, {2}}, Conf{13, {-1}}, Conf{18, {2}}}) {
    Graph before = squeeze_excite_1d(f.opset, f.axes, 1);
    auto after = optimize_graph(before, OptLevel::kExtended, {});
    ASSERT_TRUE(after.ok()) << after.status().to_string();
    ASSERT_EQ(after->nodes.size(), 1u) << "opset " << f.opset << "\n" << print_graph(*after);
    const Node& n = after->nodes[0];
    EXPECT_EQ(n.op_type, "SqueezeExcite");
    EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w1", "b1", "w2", "b2"}));
    EXPECT_EQ(n.attr_string("activation", ""), "Relu");
    EXPECT_EQ(after->initializers.count("axes"), 0u);  // the ReduceMean's axes went with it
    const Tensor x = random_tensor({1, 8, 30}, 17);
    auto a = (*RefProgram::build(before, KernelRegistry::reference()))->run({x});
    auto b = (*RefProgram::build(*after, KernelRegistry::reference()))->run({x});
    ASSERT_TRUE(a.ok() && b.ok());
    for (int64_t i = 0; i < (*a)[0].tensor.numel(); ++i) {
      EXPECT_NEAR((*a)[0].tensor.data<float>()[i], (*b)[0].tensor.data<float>()[i], 1e-5) << i;
    }
  }
}

TEST(SqueezeExciteFusionTest, LeavesAReduceMeanThatIsNotTheSpatialMean) {
  struct Conf { std::vector<int64_t> axes; int64_t keepdims; };
  for (const Conf& f : {Conf{{1, 2}, 1}, Conf{{2}, 0}, Conf{{2, 2}, 1}}) {
    Graph before = squeeze_excite_1d(13, f.axes, f.keepdims);
    if (f.keepdims == 0) before.value_info["p"] = f32("p", {1, 8});
    auto after = optimize_graph(before, OptLevel::kExtended, {});
    ASSERT_TRUE(after.ok()) << after.status().to_string();
    for (const Node& n : after->nodes) EXPECT_NE(n.op_type, "SqueezeExcite") << print_graph(*after);
  }
}

}  // namespace
}  // namespace pyflame_rt
