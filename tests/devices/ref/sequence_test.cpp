// Sequence and optional kernels through the interpreter.
#include <gtest/gtest.h>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/ref_program.h"

namespace pyflame_rt {
namespace {

ValueInfo vi(const std::string& name, DType t) { return {name, t, Shape::unknown_rank()}; }

Expected<std::vector<Value>> run(const Graph& g, std::vector<Value> in) {
  static const KernelRegistry r = [] { KernelRegistry k; register_sequence_kernels(k); return k; }();
  ASSIGN_OR_RETURN(auto p, RefProgram::build(g, r));
  return p->run(std::move(in));
}

TEST(SequenceTest, SplitInsertEraseConcatRoundTrip) {
  Graph g;
  g.inputs = {vi("x", DType::kInt32), vi("extra", DType::kInt32), vi("pos", DType::kInt64)};
  g.add_node("SplitToSequence", {"x"}, {"seq"}).attributes["axis"] = Attribute::make_int(1);
  g.add_node("SequenceInsert", {"seq", "extra", "pos"}, {"seq2"});
  g.add_node("SequenceErase", {"seq2"}, {"seq3"});  // drops the last element
  g.add_node("SequenceLength", {"seq3"}, {"len"});
  Node& c = g.add_node("ConcatFromSequence", {"seq3"}, {"y"});
  c.attributes["axis"] = Attribute::make_int(-1);
  c.attributes["new_axis"] = Attribute::make_int(1);
  g.outputs = {vi("len", DType::kInt64), vi("y", DType::kInt32)};
  // x = [[1,2,3],[4,5,6]] split along axis 1 into 3 columns of shape [2] (keepdims=1 -> [2,1]).
  auto out = run(g, {Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6}),
                     Tensor::from_vector<int32_t>({2, 1}, {7, 8}), Tensor::scalar<int64_t>(0)});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.data<int64_t>()[0], 3);
  const Tensor& y = (*out)[1].tensor;  // [extra, col0, col1] stacked on a new last axis
  ASSERT_EQ(y.dims(), (Dims{2, 1, 3}));
  std::vector<int32_t> expected = {7, 1, 2, 8, 4, 5};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.data<int32_t>()[i], expected[static_cast<size_t>(i)]);
}

TEST(SequenceTest, AtOutOfRangeNamesRange) {
  Graph g;
  g.inputs = {vi("a", DType::kFloat32), vi("p", DType::kInt64)};
  g.add_node("SequenceConstruct", {"a", "a"}, {"s"});
  g.add_node("SequenceAt", {"s", "p"}, {"y"}, "at");
  g.outputs = {vi("y", DType::kFloat32)};
  auto ok = run(g, {Tensor::from_vector<float>({1}, {2.5f}), Tensor::scalar<int64_t>(-2)});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0].tensor.data<float>()[0], 2.5f);
  auto bad = run(g, {Tensor::from_vector<float>({1}, {2.5f}), Tensor::scalar<int64_t>(2)});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("out of range [-2, 1]"), std::string::npos);
}

TEST(SequenceTest, OptionalHasElementAndGetElement) {
  Graph g;
  g.inputs = {vi("x", DType::kFloat32)};
  g.add_node("Optional", {"x"}, {"o"});
  g.add_node("OptionalHasElement", {"o"}, {"has"});
  g.add_node("Optional", {}, {"empty"}).attributes["type"] = Attribute::make_int(1);
  g.add_node("OptionalHasElement", {"empty"}, {"has_empty"});
  g.add_node("OptionalGetElement", {"o"}, {"y"});
  g.outputs = {vi("has", DType::kBool), vi("has_empty", DType::kBool), vi("y", DType::kFloat32)};
  auto out = run(g, {Tensor::from_vector<float>({2}, {1, 2})});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_TRUE((*out)[0].tensor.data<bool>()[0]);
  EXPECT_FALSE((*out)[1].tensor.data<bool>()[0]);
  EXPECT_EQ((*out)[2].tensor.data<float>()[1], 2.0f);
}

}  // namespace
}  // namespace pyflame_rt
