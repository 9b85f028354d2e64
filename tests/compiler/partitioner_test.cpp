#include "compiler/partitioner.h"

#include <gtest/gtest.h>

#include <set>

namespace pyflame_rt {
namespace {

// x -> relu a -> sigmoid b -> add(b, x) c -> mul(c, a) y; outputs y and b. Values x and a skip
// over later nodes, so cuts must carry them.
Graph skip_graph(bool typed_intermediates = true) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({2, 3})});
  g.add_node("Relu", {"x"}, {"a"}, "relu");
  g.add_node("Sigmoid", {"a"}, {"b"}, "sigmoid");
  g.add_node("Add", {"b", "x"}, {"c"}, "add");
  g.add_node("Mul", {"c", "a"}, {"y"}, "mul");
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({2, 3})});
  g.outputs.push_back({"b", DType::kFloat32, Shape::from_dims({2, 3})});
  for (const char* v : {"a", "c"}) {
    if (typed_intermediates) g.value_info[v] = {v, DType::kFloat32, Shape::from_dims({2, 3})};
  }
  return g;
}

std::vector<std::string> names(const std::vector<ValueInfo>& infos) {
  std::vector<std::string> out;
  for (const auto& i : infos) out.push_back(i.name);
  return out;
}

TEST(PartitionerTest, EveryNodeOnceAndCrossingValuesBecomeInputsAndOutputs) {
  Graph g = skip_graph();
  auto parts = partition_graph(g, 4);
  ASSERT_TRUE(parts.ok()) << parts.status().to_string();
  ASSERT_EQ(parts->size(), 4u);
  std::vector<std::string> order;
  for (const auto& p : *parts) {
    ASSERT_EQ(p.graph.nodes.size(), 1u) << p.name;
    order.push_back(p.graph.nodes[0].name);
    EXPECT_TRUE(p.graph.validate().ok()) << p.name;
  }
  EXPECT_EQ(order, (std::vector<std::string>{"relu", "sigmoid", "add", "mul"}));
  const auto& p = *parts;
  EXPECT_EQ(names(p[0].graph.inputs), std::vector<std::string>{"x"});
  EXPECT_EQ(names(p[0].graph.outputs), std::vector<std::string>{"a"});
  // After relu, later partitions still need a (mul) and x (add).
  EXPECT_EQ(std::set<std::string>(p[0].carry.begin(), p[0].carry.end()), (std::set<std::string>{"a", "x"}));
  EXPECT_EQ(names(p[2].graph.inputs), (std::vector<std::string>{"b", "x"}));
  EXPECT_EQ(std::set<std::string>(p[2].carry.begin(), p[2].carry.end()), (std::set<std::string>{"a", "b", "c"}));
  EXPECT_EQ(std::set<std::string>(p[3].carry.begin(), p[3].carry.end()), (std::set<std::string>{"b", "y"}));
  EXPECT_EQ(names(p[3].graph.outputs), std::vector<std::string>{"y"});
  EXPECT_EQ(p[3].graph.outputs[0].dtype, DType::kFloat32);
}

TEST(PartitionerTest, NeverCutsAcrossAValueOfUnknownType) {
  Graph g = skip_graph(/*typed_intermediates=*/false);  // a and c untyped; b typed (output)
  auto parts = partition_graph(g, 4);
  ASSERT_TRUE(parts.ok());
  // a lives from relu to mul: no cut can fall between them.
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].graph.nodes.size(), 4u);
}

TEST(PartitionerTest, BalancesEstimatedCostNotNodeCount) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 64})});
  g.initializers["w"] = Tensor(DType::kFloat32, {64, 64});
  g.add_node("MatMul", {"x", "w"}, {"m"}, "matmul");  // 64 x 64 multiply-adds
  g.value_info["m"] = {"m", DType::kFloat32, Shape::from_dims({1, 64})};
  std::string prev = "m";
  for (int i = 0; i < 6; ++i) {  // six cheap element-wise nodes (64 each)
    std::string out = i == 5 ? "y" : "r" + std::to_string(i);
    g.add_node("Relu", {prev}, {out}, "relu" + std::to_string(i));
    g.value_info[out] = {out, DType::kFloat32, Shape::from_dims({1, 64})};
    prev = out;
  }
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({1, 64})});
  EXPECT_DOUBLE_EQ(node_cost(g, g.nodes[0]), 64.0 * 64.0);
  EXPECT_DOUBLE_EQ(node_cost(g, g.nodes[1]), 64.0);
  auto parts = partition_graph(g, 2);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].graph.nodes.size(), 1u);  // the matmul alone outweighs the rest
  EXPECT_EQ((*parts)[0].graph.initializers.count("w"), 1u);
  EXPECT_EQ((*parts)[1].graph.initializers.count("w"), 0u);
}

TEST(PartitionerTest, CountsAndControlFlow) {
  Graph g = skip_graph();
  EXPECT_EQ(partition_graph(g, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(partition_graph(g, 9)->size(), 4u);  // no more partitions than nodes
  EXPECT_EQ(partition_graph(g, 1)->size(), 1u);
  Graph cf = skip_graph();
  cf.nodes[1].attributes["body"] = Attribute::make_graph(std::make_shared<Graph>());
  EXPECT_EQ(partition_graph(cf, 3)->size(), 1u);
}

}  // namespace
}  // namespace pyflame_rt
