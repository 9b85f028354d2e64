// Index-based reference kernels (indexing.cpp): Gather, GatherElements, GatherND, Scatter,
// ScatterElements, ScatterND. Hand-computed small cases with negative indices, odd sizes,
// several dtypes including string, every reduction, and bounds/shape errors.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/ref_program.h"

namespace pyflame_rt {
namespace {

using Attrs = std::map<std::string, Attribute>;

Expected<std::vector<Value>> run_op(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {},
                                    int64_t opset = 17) {
  Graph g;
  g.opset_imports[""] = opset;
  Node node;
  node.op_type = op;
  node.name = "n";
  node.attributes = std::move(attrs);
  std::vector<Value> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    g.inputs.push_back({name, inputs[i].dtype(), Shape::unknown_rank()});
    node.inputs.push_back(name);
    feeds.emplace_back(inputs[i]);
  }
  node.outputs.push_back("out");
  g.outputs.push_back({"out", DType::kUndefined, Shape::unknown_rank()});
  g.nodes.push_back(node);
  ASSIGN_OR_RETURN(auto p, RefProgram::build(g, KernelRegistry::reference()));
  return p->run(std::move(feeds));
}

Tensor run1(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int64_t opset = 17) {
  auto out = run_op(op, std::move(inputs), std::move(attrs), opset);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? (*out)[0].tensor : Tensor();
}

void expect_error(const std::string& op, std::vector<Tensor> inputs, const std::string& part, Attrs attrs = {},
                  int64_t opset = 17) {
  auto out = run_op(op, std::move(inputs), std::move(attrs), opset);
  ASSERT_FALSE(out.ok()) << op << " unexpectedly succeeded";
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find(part), std::string::npos)
      << "message: " << out.status().message() << "\nexpected to contain: " << part;
}

template <typename T>
std::vector<T> vals(const Tensor& t) {
  if (!t.defined()) return {};
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}
Tensor i64(Dims d, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(std::move(d), v); }
Tensor i32(Dims d, std::vector<int32_t> v) { return Tensor::from_vector<int32_t>(std::move(d), v); }
Tensor f32(Dims d, std::vector<float> v) { return Tensor::from_vector<float>(std::move(d), v); }
Tensor strs(Dims d, std::vector<std::string> v) { return Tensor::from_vector<std::string>(std::move(d), v); }
Tensor iota_f(Dims d) {
  std::vector<float> v(static_cast<size_t>(num_elements(d)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return f32(std::move(d), v);
}
Attrs axis(int64_t a) { return {{"axis", Attribute::make_int(a)}}; }
Attrs reduction(const std::string& r, int64_t a = 0) {
  return {{"axis", Attribute::make_int(a)}, {"reduction", Attribute::make_string(r)}};
}

// ---- Gather ----

TEST(IndexingTest, GatherAxis0And2dIndices) {
  Tensor x = iota_f({3, 2});  // [[0,1],[2,3],[4,5]]
  Tensor y = run1("Gather", {x, i64({2, 2}, {2, 0, -1, 1})});
  EXPECT_EQ(y.dims(), (Dims{2, 2, 2}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{4, 5, 0, 1, 4, 5, 2, 3}));
}

TEST(IndexingTest, GatherInnerAxisNegativeAndScalarIndex) {
  Tensor x = iota_f({2, 3, 5});
  // axis -1 with a scalar index removes the axis: y[i][j] = x[i][j][-2] = 15i + 5j + 3.
  Tensor y = run1("Gather", {x, Tensor::scalar<int32_t>(-2)}, axis(-1));
  EXPECT_EQ(y.dims(), (Dims{2, 3}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{3, 8, 13, 18, 23, 28}));
  Tensor z = run1("Gather", {x, i32({2}, {2, 0})}, axis(1));
  EXPECT_EQ(z.dims(), (Dims{2, 2, 5}));
  EXPECT_EQ(z.data<float>()[0], 10.0f);
  EXPECT_EQ(z.data<float>()[5], 0.0f);
  EXPECT_EQ(z.data<float>()[10], 25.0f);
}

TEST(IndexingTest, GatherStrings) {
  Tensor y = run1("Gather", {strs({3}, {"a", "b", "c"}), i64({4}, {2, 2, -3, 1})});
  EXPECT_EQ(vals<std::string>(y), (std::vector<std::string>{"c", "c", "a", "b"}));
}

TEST(IndexingTest, GatherErrors) {
  Tensor x = iota_f({3, 2});
  expect_error("Gather", {x, i64({2}, {0, 3})}, "index 3 at position 1 is out of range [-3, 2]");
  expect_error("Gather", {x, i64({1}, {-4})}, "index -4 at position 0 is out of range");
  expect_error("Gather", {x, i64({1}, {0})}, "axis 2 is out of range for rank 2", axis(2));
  expect_error("Gather", {x, f32({1}, {0})}, "indices must be int32 or int64");
}

// ---- GatherElements ----

TEST(IndexingTest, GatherElementsAxis1AndNegativeIndices) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  // y[i][j] = x[i][idx[i][j]]; idx may have fewer columns than x.
  Tensor y = run1("GatherElements", {x, i64({2, 2}, {0, -1, 2, 1})}, axis(1));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{1, 3, 6, 5}));
  // axis 0: y[i][j] = x[idx[i][j]][j], three rows of indices from two rows of data.
  Tensor z = run1("GatherElements", {x, i32({3, 1}, {1, 0, -1})}, axis(0));
  EXPECT_EQ(z.dims(), (Dims{3, 1}));
  EXPECT_EQ(vals<float>(z), (std::vector<float>{4, 1, 4}));
}

TEST(IndexingTest, GatherElementsErrors) {
  Tensor x = iota_f({2, 3});
  expect_error("GatherElements", {x, i64({2}, {0, 1})}, "must have the rank of data");
  // Indices larger than data off the axis would read past data.
  expect_error("GatherElements", {x, i64({3, 1}, {0, 0, 0})}, "exceed data [2,3] on axis 0", axis(1));
  expect_error("GatherElements", {x, i64({1, 1}, {3})}, "index 3 at position 0 is out of range [-3, 2]", axis(1));
}

// ---- GatherND ----

TEST(IndexingTest, GatherNdFullAndPartialDepth) {
  Tensor x = iota_f({2, 2, 3});
  Tensor y = run1("GatherND", {x, i64({2, 3}, {1, 0, 2, 0, -1, -3})});
  EXPECT_EQ(y.dims(), Dims{2});
  EXPECT_EQ(vals<float>(y), (std::vector<float>{8, 3}));
  // Depth 1 picks whole [2,3] blocks.
  Tensor z = run1("GatherND", {x, i64({1, 1}, {-1})});
  EXPECT_EQ(z.dims(), (Dims{1, 2, 3}));
  EXPECT_EQ(vals<float>(z), (std::vector<float>{6, 7, 8, 9, 10, 11}));
  Tensor s = run1("GatherND", {strs({2, 2}, {"a", "b", "c", "d"}), i64({2, 2}, {1, 1, 0, 1})});
  EXPECT_EQ(vals<std::string>(s), (std::vector<std::string>{"d", "b"}));
}

TEST(IndexingTest, GatherNdBatchDims) {
  // batch_dims 1: y[b] = x[b][idx[b]...].
  Tensor x = iota_f({2, 3, 2});
  Tensor y = run1("GatherND", {x, i64({2, 2, 1}, {2, 0, 1, -1})}, {{"batch_dims", Attribute::make_int(1)}});
  EXPECT_EQ(y.dims(), (Dims{2, 2, 2}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{4, 5, 0, 1, 8, 9, 10, 11}));
  Tensor z = run1("GatherND", {x, i64({2, 2}, {2, 1, 0, 0})}, {{"batch_dims", Attribute::make_int(1)}});
  EXPECT_EQ(vals<float>(z), (std::vector<float>{5, 6}));
}

TEST(IndexingTest, GatherNdErrors) {
  Tensor x = iota_f({2, 3});
  expect_error("GatherND", {x, i64({1, 3}, {0, 0, 0})}, "index depth 3 exceeds data rank 2");
  expect_error("GatherND", {x, i64({1, 2}, {2, 0})}, "index 2 at position 0 is out of range [-2, 1]");
  expect_error("GatherND", {x, i64({3, 1}, {0, 0, 0})}, "batch dim 0 differs", {{"batch_dims", Attribute::make_int(1)}});
  expect_error("GatherND", {x, i64({2, 1}, {0, 0})}, "batch_dims 2 must be in", {{"batch_dims", Attribute::make_int(2)}});
}

// ---- ScatterElements / Scatter ----

TEST(IndexingTest, ScatterElementsNoneWithNegativeIndices) {
  Tensor x(DType::kFloat32, {3, 3});
  Tensor y = run1("ScatterElements", {x, i64({2, 3}, {1, 0, 2, 0, 2, -2}), f32({2, 3}, {1, 2, 3, 4, 5, 6})});
  // x[idx[i][j]][j] = u[i][j]
  EXPECT_EQ(vals<float>(y), (std::vector<float>{4, 2, 0, 1, 0, 6, 0, 5, 3}));
  Tensor z = run1("ScatterElements", {f32({1, 5}, {1, 2, 3, 4, 5}), i64({1, 2}, {1, -2}), f32({1, 2}, {11, 44})}, axis(1));
  EXPECT_EQ(vals<float>(z), (std::vector<float>{1, 11, 3, 44, 5}));
}

TEST(IndexingTest, ScatterElementsReductions) {
  Tensor x = f32({1, 3}, {1, 2, 3});
  Tensor idx = i64({1, 3}, {1, 1, 2});
  Tensor u = f32({1, 3}, {5, -4, 0.5f});
  EXPECT_EQ(vals<float>(run1("ScatterElements", {x, idx, u}, reduction("add", 1))), (std::vector<float>{1, 3, 3.5f}));
  EXPECT_EQ(vals<float>(run1("ScatterElements", {x, idx, u}, reduction("mul", 1))), (std::vector<float>{1, -40, 1.5f}));
  EXPECT_EQ(vals<float>(run1("ScatterElements", {x, idx, u}, reduction("max", 1))), (std::vector<float>{1, 5, 3}));
  EXPECT_EQ(vals<float>(run1("ScatterElements", {x, idx, u}, reduction("min", 1))), (std::vector<float>{1, -4, 0.5f}));
  // Integers combine exactly even beyond float precision.
  Tensor big = run1("ScatterElements", {i64({1}, {(int64_t{1} << 53) + 1}), i64({1}, {0}), i64({1}, {2})}, reduction("add"));
  EXPECT_EQ(vals<int64_t>(big), std::vector<int64_t>{(int64_t{1} << 53) + 3});
}

TEST(IndexingTest, ScatterElementsStringsAndDeprecatedScatter) {
  Tensor y = run1("ScatterElements", {strs({3}, {"a", "b", "c"}), i64({1}, {-1}), strs({1}, {"z"})});
  EXPECT_EQ(vals<std::string>(y), (std::vector<std::string>{"a", "b", "z"}));
  Tensor s = run1("Scatter", {iota_f({2, 2}), i32({1, 2}, {1, 0}), f32({1, 2}, {9, 8})}, axis(1), 10);
  EXPECT_EQ(vals<float>(s), (std::vector<float>{8, 9, 2, 3}));
}

TEST(IndexingTest, ScatterElementsErrors) {
  Tensor x = iota_f({2, 2});
  expect_error("ScatterElements", {x, i64({1, 2}, {0, 2}), f32({1, 2}, {1, 1})}, "index 2 at position 1 is out of range");
  expect_error("ScatterElements", {x, i64({1, 2}, {0, 1}), f32({2, 1}, {1, 1})}, "must have the same shape");
  expect_error("ScatterElements", {x, i64({1, 2}, {0, 1}), i64({1, 2}, {1, 1})}, "updates dtype int64 must match");
  expect_error("ScatterElements", {x, i64({1, 3}, {0, 0, 0}), f32({1, 3}, {1, 1, 1})}, "exceed data [2,2] on axis 1");
  expect_error("ScatterElements", {x, i64({1, 1}, {0}), f32({1, 1}, {1})}, "reduction must be", reduction("sum"));
  expect_error("ScatterElements", {strs({1}, {"a"}), i64({1}, {0}), strs({1}, {"b"})}, "needs numeric data",
               reduction("add"));
}

// ---- ScatterND ----

TEST(IndexingTest, ScatterNdSlicesAndElements) {
  Tensor x = iota_f({3, 2});
  // Depth-1 indices replace whole rows.
  Tensor y = run1("ScatterND", {x, i64({2, 1}, {-1, 0}), f32({2, 2}, {9, 8, 7, 6})});
  EXPECT_EQ(vals<float>(y), (std::vector<float>{7, 6, 2, 3, 9, 8}));
  // Depth-2 indices replace single elements.
  Tensor z = run1("ScatterND", {x, i64({2, 2}, {1, 1, 2, -2}), f32({2}, {-1, -2})});
  EXPECT_EQ(vals<float>(z), (std::vector<float>{0, 1, 2, -1, -2, 5}));
  Tensor s = run1("ScatterND", {strs({2}, {"a", "b"}), i64({1, 1}, {1}), strs({1}, {"q"})});
  EXPECT_EQ(vals<std::string>(s), (std::vector<std::string>{"a", "q"}));
}

TEST(IndexingTest, ScatterNdReductionsWithDuplicates) {
  Tensor x = i32({4}, {1, 2, 3, 4});
  Tensor idx = i64({3, 1}, {0, 2, 0});
  Tensor u = i32({3}, {10, -5, 3});
  Attrs add = {{"reduction", Attribute::make_string("add")}};
  Attrs mul = {{"reduction", Attribute::make_string("mul")}};
  Attrs mx = {{"reduction", Attribute::make_string("max")}};
  Attrs mn = {{"reduction", Attribute::make_string("min")}};
  EXPECT_EQ(vals<int32_t>(run1("ScatterND", {x, idx, u}, add)), (std::vector<int32_t>{14, 2, -2, 4}));
  EXPECT_EQ(vals<int32_t>(run1("ScatterND", {x, idx, u}, mul)), (std::vector<int32_t>{30, 2, -15, 4}));
  EXPECT_EQ(vals<int32_t>(run1("ScatterND", {x, idx, u}, mx)), (std::vector<int32_t>{10, 2, 3, 4}));
  EXPECT_EQ(vals<int32_t>(run1("ScatterND", {x, idx, u}, mn)), (std::vector<int32_t>{1, 2, -5, 4}));
}

TEST(IndexingTest, ScatterNdErrors) {
  Tensor x = iota_f({3, 2});
  expect_error("ScatterND", {x, i64({1, 1}, {3}), f32({1, 2}, {0, 0})}, "index 3 at position 0 is out of range [-3, 2]");
  expect_error("ScatterND", {x, i64({1, 1}, {0}), f32({2}, {0, 0})}, "updates shape [2] must be [1,2]");
  expect_error("ScatterND", {x, i64({1, 3}, {0, 0, 0}), f32({1}, {0})}, "index depth 3 exceeds data rank 2");
  expect_error("ScatterND", {x, i64({1, 1}, {0}), Tensor::from_vector<double>({1, 2}, {0, 0})}, "must match data dtype");
}

}  // namespace
}  // namespace pyflame_rt
