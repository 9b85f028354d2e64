#include "graph/graph.h"

#include <gtest/gtest.h>

#include <limits>

namespace pyflame_rt {
namespace {

Graph two_relus() {
  Graph g;
  g.name = "g";
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 4})});
  g.add_node("Relu", {"h"}, {"y"}, "second");
  g.add_node("Relu", {"x"}, {"h"}, "first");
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({1, 4})});
  return g;
}

// Found by fuzz/pfm_loader_fuzz (UBSan): an empty tensor whose other dims multiply past
// int64 overflowed in numel() although it holds nothing.
TEST(ShapeTest, EmptyTensorWithHugeDimsHasZeroElements) {
  Dims dims{1051200, 16911480651673, 0};
  EXPECT_EQ(num_elements(dims), 0);
  Tensor t(DType::kUInt8, dims);
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.nbytes(), 0u);
  EXPECT_EQ(num_elements({int64_t{1} << 40, int64_t{1} << 40}), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(num_elements({2, 3, 4}), 24);
  // Found by fuzz/npy_reader_fuzz: the constructor refused (bad_alloc) an empty tensor whose
  // other dims overflow uint64.
  Tensor e(DType::kFloat32, {int64_t{1} << 40, int64_t{1} << 40, 0});
  EXPECT_EQ(e.numel(), 0);
}

// A float element read as an integer (a kernel's count, axis or flag from a model's tensor):
// NaN, infinities and values past int64 were undefined conversions (Dropout's training_mode
// of NaN; UBSan, kernel_run). NaN reads as 0, the rest saturates; in-range values truncate.
TEST(TensorTest, FloatElementsReadAsInt64AreDefined) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor f = Tensor::from_vector<float>({6}, {std::numeric_limits<float>::quiet_NaN(), inf, -inf, 1e30f, -2.75f, 7.5f});
  const int64_t max = std::numeric_limits<int64_t>::max(), min = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(f.to_int64_vector(), (std::vector<int64_t>{0, max, min, max, -2, 7}));
  Tensor d = Tensor::from_vector<double>({2}, {9223372036854775807.0, -9223372036854775808.0});
  EXPECT_EQ(d.to_int64_vector(), (std::vector<int64_t>{max, min}));
  Tensor h(DType::kFloat16, {1});
  h.data<uint16_t>()[0] = 0x7e00;  // NaN
  EXPECT_EQ(h.value_as_int64(0), 0);
}

// An int attribute given as a float: saturated like a float element read as int64, not an
// undefined cast (kernel_run stop 17 run 5: 1e30 where an int was read; UBSan).
TEST(NodeTest, FloatAttributeReadAsIntIsDefined) {
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t max = std::numeric_limits<int64_t>::max(), min = std::numeric_limits<int64_t>::min();
  const std::vector<std::pair<float, int64_t>> cases = {
      {1e30f, max}, {-1e30f, min}, {inf, max}, {std::numeric_limits<float>::quiet_NaN(), 0}, {-2.75f, -2}, {7.5f, 7}};
  for (const auto& [f, want] : cases) {
    Node n;
    n.attributes["k"] = Attribute::make_float(f);
    EXPECT_EQ(n.attr_int("k", 3), want) << f;
  }
}

TEST(GraphTest, SortsProducersBeforeConsumers) {
  Graph g = two_relus();
  ASSERT_TRUE(g.sort_topologically().ok());
  EXPECT_EQ(g.nodes[0].name, "first");
  EXPECT_EQ(g.nodes[1].name, "second");
}

TEST(GraphTest, RejectsCycleNamingTheNodes) {
  Graph g;
  g.add_node("Relu", {"b"}, {"a"}, "n1");
  g.add_node("Relu", {"a"}, {"b"}, "n2");
  Status st = g.sort_topologically();
  ASSERT_EQ(st.code(), StatusCode::kInvalidGraph);
  EXPECT_NE(st.message().find("cycle"), std::string::npos);
  EXPECT_NE(st.message().find("n1"), std::string::npos);
}

TEST(GraphTest, RejectsUndefinedInput) {
  Graph g;
  g.add_node("Relu", {"nowhere"}, {"a"}, "n1");
  Status st = g.sort_topologically();
  ASSERT_EQ(st.code(), StatusCode::kInvalidGraph);
  EXPECT_NE(st.message().find("'nowhere'"), std::string::npos);
}

TEST(GraphTest, CheckSortedNamesOutOfOrderAndDanglingInputs) {
  Graph g = two_relus();
  Status st = g.check_sorted();
  ASSERT_EQ(st.code(), StatusCode::kInvalidGraph);
  EXPECT_NE(st.message().find("second"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("only after it"), std::string::npos) << st.message();
  ASSERT_TRUE(g.sort_topologically().ok());
  EXPECT_TRUE(g.check_sorted().ok());
  g.nodes.erase(g.nodes.begin());  // "h" now has no producer
  st = g.check_sorted();
  ASSERT_EQ(st.code(), StatusCode::kInvalidGraph);
  EXPECT_NE(st.message().find("'h' is not a graph input"), std::string::npos) << st.message();
}

TEST(GraphTest, CheckSortedRejectsAValueProducedTwice) {
  Graph g = two_relus();
  ASSERT_TRUE(g.sort_topologically().ok());
  g.add_node("Relu", {"x"}, {"h"}, "again");
  Status st = g.check_sorted();
  ASSERT_EQ(st.code(), StatusCode::kInvalidGraph);
  EXPECT_NE(st.message().find("again"), std::string::npos) << st.message();
}

// An If inside an If's branch reading a value that branch makes (Faster R-CNN's post-processing):
// not an outer-scope read of the outer If, which sorting and checking must accept.
TEST(GraphTest, NestedSubgraphReadsAValueOfItsEnclosingBranch) {
  auto leaf = std::make_shared<Graph>();
  leaf->add_node("Identity", {"v"}, {"w"});
  leaf->outputs.push_back({"w", DType::kFloat32, Shape::unknown_rank()});
  auto branch = std::make_shared<Graph>();
  branch->add_node("Neg", {"x"}, {"v"});  // x: from the top level
  Node& inner = branch->add_node("If", {"c"}, {"o"});
  inner.attributes["then_branch"] = Attribute::make_graph(leaf);
  inner.attributes["else_branch"] = Attribute::make_graph(leaf);
  branch->outputs.push_back({"o", DType::kFloat32, Shape::unknown_rank()});
  Graph g;
  g.inputs = {{"x", DType::kFloat32, Shape::unknown_rank()}, {"c", DType::kBool, Shape::unknown_rank()}};
  Node& outer = g.add_node("If", {"c"}, {"y"}, "outer");
  outer.attributes["then_branch"] = Attribute::make_graph(branch);
  outer.attributes["else_branch"] = Attribute::make_graph(branch);
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
  Status sorted = g.sort_topologically();
  EXPECT_TRUE(sorted.ok()) << sorted.to_string();
  Status checked = g.check_sorted();
  EXPECT_TRUE(checked.ok()) << checked.to_string();
  // A value no scope defines is still an error.
  leaf->nodes[0].inputs[0] = "nowhere";
  EXPECT_FALSE(g.sort_topologically().ok());
}

TEST(GraphTest, PrinterIsDeterministic) {
  Graph g = two_relus();
  ASSERT_TRUE(g.sort_topologically().ok());
  g.nodes[0].attributes["b"] = Attribute::make_int(2);
  g.nodes[0].attributes["a"] = Attribute::make_floats({1.5f});
  EXPECT_EQ(print_graph(g),
            "graph g (%x: float32[1,4]) {\n"
            "  %h = Relu(%x) {a=[1.5], b=2}\n"
            "  %y = Relu(%h)\n"
            "  return %y\n"
            "}\n");
}

TEST(DTypeTest, Float16RoundTripsAndRounds) {
  EXPECT_EQ(Float16::from_float(1.0f), 0x3c00);
  EXPECT_EQ(Float16::from_float(65504.0f), 0x7bff);
  EXPECT_EQ(Float16::from_float(1e6f), 0x7c00);
  EXPECT_EQ(Float16::from_float(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_FLOAT_EQ(Float16::to_float(0x3555), 0.333251953125f);
  EXPECT_FLOAT_EQ(static_cast<float>(BFloat16(3.140625f)), 3.140625f);
}

}  // namespace
}  // namespace pyflame_rt
