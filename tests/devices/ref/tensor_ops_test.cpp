// Shape and layout reference kernels (tensor_ops.cpp). Each test runs a one-node graph through
// RefProgram and compares against hand-computed values: odd sizes, negative axes, several
// dtypes including string, the attribute-vs-input forms of older opsets, and error messages.
#include <gtest/gtest.h>

#include <climits>
#include <map>
#include <string>
#include <vector>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/ref_program.h"

namespace pyflame_rt {
namespace {

using Attrs = std::map<std::string, Attribute>;

// Runs `op` on `inputs` (an undefined Tensor marks an omitted optional input).
Expected<std::vector<Value>> run_op(const std::string& op, std::vector<Tensor> inputs, size_t n_out,
                                    Attrs attrs = {}, int64_t opset = 17) {
  Graph g;
  g.opset_imports[""] = opset;
  Node node;
  node.op_type = op;
  node.name = "n";
  node.attributes = std::move(attrs);
  std::vector<Value> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) { node.inputs.push_back(""); continue; }
    std::string name = "in" + std::to_string(i);
    g.inputs.push_back({name, inputs[i].dtype(), Shape::unknown_rank()});
    node.inputs.push_back(name);
    feeds.emplace_back(inputs[i]);
  }
  for (size_t i = 0; i < n_out; ++i) {
    node.outputs.push_back("out" + std::to_string(i));
    g.outputs.push_back({"out" + std::to_string(i), DType::kUndefined, Shape::unknown_rank()});
  }
  g.nodes.push_back(node);
  ASSIGN_OR_RETURN(auto p, RefProgram::build(g, KernelRegistry::reference()));
  return p->run(std::move(feeds));
}

// Single-output convenience: the output tensor, or a failed test.
Tensor run1(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int64_t opset = 17) {
  auto out = run_op(op, std::move(inputs), 1, std::move(attrs), opset);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  if (!out.ok()) return Tensor();
  return (*out)[0].tensor;
}

// The error a failing single-output run returns.
Status run_err(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int64_t opset = 17,
               size_t n_out = 1) {
  auto out = run_op(op, std::move(inputs), n_out, std::move(attrs), opset);
  EXPECT_FALSE(out.ok()) << op << " unexpectedly succeeded";
  return out.ok() ? Status::OK() : out.status();
}

template <typename T>
std::vector<T> vals(const Tensor& t) {
  if (!t.defined()) return {};
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}
std::vector<bool> bools(const Tensor& t) { return std::vector<bool>(t.data<bool>(), t.data<bool>() + t.numel()); }

Tensor i64(Dims d, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(std::move(d), v); }
Tensor f32(Dims d, std::vector<float> v) { return Tensor::from_vector<float>(std::move(d), v); }
Tensor ints1d(std::vector<int64_t> v) { return i64({static_cast<int64_t>(v.size())}, v); }
Tensor strs(Dims d, std::vector<std::string> v) { return Tensor::from_vector<std::string>(std::move(d), v); }
// 0, 1, 2, ... n-1 as float of the given dims.
Tensor iota_f(Dims d) {
  std::vector<float> v(static_cast<size_t>(num_elements(d)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return f32(std::move(d), v);
}
Attribute ints_attr(std::vector<int64_t> v) { return Attribute::make_ints(std::move(v)); }
Attribute int_attr(int64_t v) { return Attribute::make_int(v); }

void expect_msg(const Status& s, const std::string& part) {
  EXPECT_NE(s.message().find(part), std::string::npos) << "message: " << s.message() << "\nexpected to contain: " << part;
}

// ---- Constant ----

TEST(TensorOpsTest, ConstantFromEachAttributeKind) {
  EXPECT_EQ(vals<float>(run1("Constant", {}, {{"value", Attribute::make_tensor(f32({2}, {1.5f, -2}))}})),
            (std::vector<float>{1.5f, -2}));
  Tensor f = run1("Constant", {}, {{"value_float", Attribute::make_float(0.25f)}});
  EXPECT_EQ(f.dims(), Dims{});
  EXPECT_EQ(vals<float>(f), std::vector<float>{0.25f});
  Tensor fs = run1("Constant", {}, {{"value_floats", Attribute::make_floats({1, 2, 3})}});
  EXPECT_EQ(fs.dims(), Dims{3});
  Tensor i = run1("Constant", {}, {{"value_int", int_attr(-7)}});
  EXPECT_EQ(i.dtype(), DType::kInt64);
  EXPECT_EQ(vals<int64_t>(i), std::vector<int64_t>{-7});
  EXPECT_EQ(vals<int64_t>(run1("Constant", {}, {{"value_ints", ints_attr({4, 5})}})), (std::vector<int64_t>{4, 5}));
  Tensor s = run1("Constant", {}, {{"value_string", Attribute::make_string("hi")}});
  EXPECT_EQ(s.dtype(), DType::kString);
  EXPECT_EQ(vals<std::string>(s), std::vector<std::string>{"hi"});
  Attribute ss;
  ss.kind = AttrKind::kStrings;
  ss.strings = {"a", "bc"};
  EXPECT_EQ(vals<std::string>(run1("Constant", {}, {{"value_strings", ss}})), (std::vector<std::string>{"a", "bc"}));
}

TEST(TensorOpsTest, ConstantWithoutValueOrSparseIsError) {
  EXPECT_EQ(run_err("Constant", {}).code(), StatusCode::kInvalidArgument);
  Status s = run_err("Constant", {}, {{"sparse_value", Attribute::make_tensor(f32({1}, {1}))}});
  EXPECT_EQ(s.code(), StatusCode::kNotImplemented);
}

// ---- Reshape / Shape / Size / Flatten / Squeeze / Unsqueeze ----

TEST(TensorOpsTest, ReshapeCopiesZeroInfersMinusOneAndReturnsView) {
  Tensor x = iota_f({2, 3, 5});
  auto out = run_op("Reshape", {x, ints1d({0, -1})}, 1);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = (*out)[0].tensor;
  EXPECT_EQ(y.dims(), (Dims{2, 15}));
  EXPECT_TRUE(y.shares_buffer_with(x));
  EXPECT_EQ(y.data<float>()[29], 29.0f);
  EXPECT_EQ(run1("Reshape", {x, ints1d({5, -1, 3})}).dims(), (Dims{5, 2, 3}));
}

TEST(TensorOpsTest, ReshapeAllowZeroKeepsZeroAsSize) {
  Tensor x(DType::kFloat32, {0, 3});
  EXPECT_EQ(run1("Reshape", {x, ints1d({3, 0})}, {{"allowzero", int_attr(1)}}).dims(), (Dims{3, 0}));
  // Without allowzero the 0 copies dim 1 (3): [3, 3] has 9 elements, not 0.
  expect_msg(run_err("Reshape", {x, ints1d({3, 0})}), "cannot reshape [0,3]");
}

TEST(TensorOpsTest, ReshapeOpset1UsesShapeAttribute) {
  Tensor y = run1("Reshape", {iota_f({6})}, {{"shape", ints_attr({3, 2})}}, 1);
  EXPECT_EQ(y.dims(), (Dims{3, 2}));
}

TEST(TensorOpsTest, ReshapeErrorsNameCounts) {
  Status s = run_err("Reshape", {iota_f({2, 3}), ints1d({4, 2})});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  expect_msg(s, "cannot reshape [2,3] (6 elements) to [4,2] (8 elements)");
  expect_msg(run_err("Reshape", {iota_f({2, 3}), ints1d({-1, -1})}), "more than one -1");
  expect_msg(run_err("Reshape", {iota_f({2, 3}), ints1d({-1, 4})}), "cannot reshape [2,3]");
  expect_msg(run_err("Reshape", {iota_f({2, 3}), ints1d({-2, -3})}), "negative dim");
  expect_msg(run_err("Reshape", {iota_f({6}), ints1d({6, 0})}), "no such dim");
}

TEST(TensorOpsTest, ShapeStartEndClampAndNegative) {
  Tensor x(DType::kString, {2, 3, 5, 7});
  EXPECT_EQ(vals<int64_t>(run1("Shape", {x})), (std::vector<int64_t>{2, 3, 5, 7}));
  EXPECT_EQ(vals<int64_t>(run1("Shape", {x}, {{"start", int_attr(1)}, {"end", int_attr(-1)}})),
            (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(vals<int64_t>(run1("Shape", {x}, {{"start", int_attr(-10)}, {"end", int_attr(10)}})),
            (std::vector<int64_t>{2, 3, 5, 7}));
  Tensor empty = run1("Shape", {x}, {{"start", int_attr(3)}, {"end", int_attr(1)}});
  EXPECT_EQ(empty.dims(), Dims{0});
  EXPECT_EQ(vals<int64_t>(run1("Size", {x})), std::vector<int64_t>{210});
  EXPECT_EQ(run1("Size", {x}).dims(), Dims{});
}

TEST(TensorOpsTest, FlattenAxesIncludingZeroAndNegativeAndEmpty) {
  Tensor x = iota_f({2, 3, 5});
  EXPECT_EQ(run1("Flatten", {x}).dims(), (Dims{2, 15}));
  EXPECT_EQ(run1("Flatten", {x}, {{"axis", int_attr(0)}}).dims(), (Dims{1, 30}));
  EXPECT_EQ(run1("Flatten", {x}, {{"axis", int_attr(3)}}).dims(), (Dims{30, 1}));
  EXPECT_EQ(run1("Flatten", {x}, {{"axis", int_attr(-1)}}).dims(), (Dims{6, 5}));
  // A zero-sized outer extent must not zero the inner one.
  EXPECT_EQ(run1("Flatten", {Tensor(DType::kFloat32, {0, 3, 4})}).dims(), (Dims{0, 12}));
  expect_msg(run_err("Flatten", {x}, {{"axis", int_attr(4)}}), "out of range");
}

TEST(TensorOpsTest, SqueezeAttributeAndInputForms) {
  Tensor x = iota_f({1, 3, 1, 2});
  EXPECT_EQ(run1("Squeeze", {x}).dims(), (Dims{3, 2}));
  EXPECT_EQ(run1("Squeeze", {x}, {{"axes", ints_attr({-2})}}, 11).dims(), (Dims{1, 3, 2}));
  Tensor y = run1("Squeeze", {x, ints1d({0})}, {}, 13);
  EXPECT_EQ(y.dims(), (Dims{3, 1, 2}));
  EXPECT_TRUE(y.shares_buffer_with(x));
  Status s = run_err("Squeeze", {x, ints1d({1})}, {}, 13);
  expect_msg(s, "cannot squeeze axis 1 of shape [1,3,1,2]: its size is 3, not 1");
  expect_msg(run_err("Squeeze", {x, ints1d({4})}, {}, 13), "axis 4 is out of range for rank 4");
}

TEST(TensorOpsTest, UnsqueezeUnsortedNegativeAxesAndStrings) {
  Tensor x = strs({3, 4}, {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"});
  Tensor y = run1("Unsqueeze", {x, ints1d({2, 0})}, {}, 13);
  EXPECT_EQ(y.dims(), (Dims{1, 3, 1, 4}));
  EXPECT_EQ(y.data<std::string>()[11], "l");
  EXPECT_EQ(run1("Unsqueeze", {x}, {{"axes", ints_attr({-1})}}, 11).dims(), (Dims{3, 4, 1}));
  expect_msg(run_err("Unsqueeze", {x, ints1d({1, -3})}, {}, 13), "given twice");
  expect_msg(run_err("Unsqueeze", {x, ints1d({3})}, {}, 13), "out of range");
}

// ---- Transpose / Concat / Split ----

TEST(TensorOpsTest, TransposeDefaultReversesAxes) {
  Tensor y = run1("Transpose", {iota_f({2, 3})});
  EXPECT_EQ(y.dims(), (Dims{3, 2}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(TensorOpsTest, TransposePermOn3dStrings) {
  // x[i][j][k] = "ijk"; perm [1, 2, 0] gives y[j][k][i] = x[i][j][k].
  std::vector<std::string> v;
  for (int i = 0; i < 2; ++i) for (int j = 0; j < 3; ++j) for (int k = 0; k < 2; ++k)
    v.push_back(std::to_string(i) + std::to_string(j) + std::to_string(k));
  Tensor y = run1("Transpose", {strs({2, 3, 2}, v)}, {{"perm", ints_attr({1, 2, 0})}});
  EXPECT_EQ(y.dims(), (Dims{3, 2, 2}));
  EXPECT_EQ(vals<std::string>(y), (std::vector<std::string>{"000", "100", "001", "101", "010", "110", "011", "111",
                                                            "020", "120", "021", "121"}));
  expect_msg(run_err("Transpose", {iota_f({2, 3})}, {{"perm", ints_attr({0, 0})}}), "not a permutation");
  expect_msg(run_err("Transpose", {iota_f({2, 3})}, {{"perm", ints_attr({0, 1, 2})}}), "not a permutation");
}

TEST(TensorOpsTest, ConcatNegativeAxisAndStrings) {
  Tensor y = run1("Concat", {iota_f({2, 1}), f32({2, 2}, {10, 11, 12, 13})}, {{"axis", int_attr(-1)}});
  EXPECT_EQ(y.dims(), (Dims{2, 3}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{0, 10, 11, 1, 12, 13}));
  Tensor s = run1("Concat", {strs({1}, {"x"}), strs({2}, {"y", "z"}), strs({0}, {})}, {{"axis", int_attr(0)}});
  EXPECT_EQ(vals<std::string>(s), (std::vector<std::string>{"x", "y", "z"}));
  expect_msg(run_err("Concat", {iota_f({2, 1}), iota_f({3, 1})}, {{"axis", int_attr(1)}}),
             "input 1 is float32[3,1], input 0 is float32[2,1]");
}

TEST(TensorOpsTest, SplitEqualAttrAndInputForms) {
  Tensor x = iota_f({2, 6});
  auto out = run_op("Split", {x}, 3, {{"axis", int_attr(1)}}, 11);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(vals<float>((*out)[2].tensor), (std::vector<float>{4, 5, 10, 11}));
  out = run_op("Split", {x}, 2, {{"axis", int_attr(-1)}, {"split", ints_attr({1, 5})}}, 11);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(vals<float>((*out)[0].tensor), (std::vector<float>{0, 6}));
  EXPECT_EQ((*out)[1].tensor.dims(), (Dims{2, 5}));
  out = run_op("Split", {x, ints1d({4, 0, 2})}, 3, {{"axis", int_attr(1)}}, 13);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[1].tensor.dims(), (Dims{2, 0}));
  EXPECT_EQ(vals<float>((*out)[2].tensor), (std::vector<float>{4, 5, 10, 11}));
}

TEST(TensorOpsTest, SplitOpset1TakesSplitInput) {
  auto out = run_op("Split", {iota_f({5}), ints1d({1, 4})}, 2, {}, 1);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(vals<float>((*out)[0].tensor), std::vector<float>{0});
  EXPECT_EQ(vals<float>((*out)[1].tensor), (std::vector<float>{1, 2, 3, 4}));
}

TEST(TensorOpsTest, SplitUnevenLastChunkAndErrors) {
  auto out = run_op("Split", {strs({5}, {"a", "b", "c", "d", "e"})}, 2);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(vals<std::string>((*out)[0].tensor), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(vals<std::string>((*out)[1].tensor), (std::vector<std::string>{"d", "e"}));
  expect_msg(run_err("Split", {iota_f({5}), ints1d({2, 2})}, {}, 13, 2), "does not divide axis 0 of length 5");
  expect_msg(run_err("Split", {iota_f({5}), ints1d({6, -1})}, {}, 13, 2), "negative size");
}

// ---- Slice ----

TEST(TensorOpsTest, SliceWithStepsAxesAndClamping) {
  Tensor x = iota_f({3, 7});
  // Rows 0..2 step 2, columns 1..INT64_MAX (clamped) step 3.
  Tensor y = run1("Slice", {x, ints1d({0, 1}), ints1d({3, INT64_MAX}), ints1d({0, -1}), ints1d({2, 3})});
  EXPECT_EQ(y.dims(), (Dims{2, 2}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{1, 4, 15, 18}));
  // Default axes/steps; start beyond the end gives an empty axis.
  EXPECT_EQ(run1("Slice", {x, ints1d({0, 9}), ints1d({3, 10})}).dims(), (Dims{3, 0}));
}

TEST(TensorOpsTest, SliceNegativeStepsReverse) {
  Tensor x = iota_f({7});
  EXPECT_EQ(vals<float>(run1("Slice", {x, ints1d({-1}), ints1d({INT64_MIN}), ints1d({0}), ints1d({-1})})),
            (std::vector<float>{6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(vals<float>(run1("Slice", {x, ints1d({20}), ints1d({1}), Tensor(), ints1d({-2})})),
            (std::vector<float>{6, 4, 2}));
  EXPECT_EQ(vals<float>(run1("Slice", {x, ints1d({5}), ints1d({-8}), Tensor(), ints1d({INT64_MIN})})),
            (std::vector<float>{5}));
  EXPECT_EQ(run1("Slice", {x, ints1d({-10}), ints1d({0}), Tensor(), ints1d({-1})}).dims(), Dims{0});
  EXPECT_EQ(run1("Slice", {Tensor(DType::kFloat32, {0}), ints1d({0}), ints1d({-1}), Tensor(), ints1d({-1})}).dims(),
            Dims{0});
  EXPECT_EQ(vals<float>(run1("Slice", {x, ints1d({1}), ints1d({7}), Tensor(), ints1d({INT64_MAX})})),
            (std::vector<float>{1}));
}

TEST(TensorOpsTest, SliceOpset1AttributesAndStrings) {
  Tensor x = strs({2, 3}, {"a", "b", "c", "d", "e", "f"});
  Tensor y = run1("Slice", {x}, {{"starts", ints_attr({1})}, {"ends", ints_attr({-1})}, {"axes", ints_attr({1})}}, 1);
  EXPECT_EQ(y.dims(), (Dims{2, 1}));
  EXPECT_EQ(vals<std::string>(y), (std::vector<std::string>{"b", "e"}));
}

TEST(TensorOpsTest, SliceErrors) {
  Tensor x = iota_f({3, 4});
  expect_msg(run_err("Slice", {x, ints1d({0}), ints1d({1}), ints1d({0}), ints1d({0})}), "step for axis 0 is 0");
  expect_msg(run_err("Slice", {x, ints1d({0, 0}), ints1d({1, 1}), ints1d({1, -1})}), "twice");
  expect_msg(run_err("Slice", {x, ints1d({0}), ints1d({1, 2})}), "equal lengths");
  expect_msg(run_err("Slice", {x, ints1d({0}), ints1d({1}), ints1d({2})}), "axis 2 is out of range for rank 2");
}

// ---- Expand / Tile ----

TEST(TensorOpsTest, ExpandBroadcastsBothWays) {
  Tensor y = run1("Expand", {f32({3, 1}, {1, 2, 3}), ints1d({2, 1, 4})});
  EXPECT_EQ(y.dims(), (Dims{2, 3, 4}));
  EXPECT_EQ(y.data<float>()[5], 2.0f);
  EXPECT_EQ(y.data<float>()[23], 3.0f);
  // The target may be smaller than the input: the result keeps the input's dims.
  EXPECT_EQ(run1("Expand", {iota_f({2, 3}), ints1d({3})}).dims(), (Dims{2, 3}));
  Tensor b = run1("Expand", {Tensor::from_vector<bool>({1}, {true}), ints1d({3})});
  EXPECT_EQ(bools(b), (std::vector<bool>{true, true, true}));
  expect_msg(run_err("Expand", {iota_f({2, 3}), ints1d({4})}), "cannot be broadcast");
  expect_msg(run_err("Expand", {iota_f({2, 3}), ints1d({-1, 3})}), "negative dim");
}

TEST(TensorOpsTest, TileRepeatsEachAxis) {
  Tensor y = run1("Tile", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), ints1d({2, 1})});
  EXPECT_EQ(y.dims(), (Dims{4, 3}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}));
  Tensor s = run1("Tile", {strs({2}, {"p", "q"}), ints1d({3})});
  EXPECT_EQ(vals<std::string>(s), (std::vector<std::string>{"p", "q", "p", "q", "p", "q"}));
  EXPECT_EQ(run1("Tile", {iota_f({2, 3}), ints1d({0, 2})}).dims(), (Dims{0, 6}));
  expect_msg(run_err("Tile", {iota_f({2, 3}), ints1d({2})}), "repeats has 1 entries, expected one per axis of [2,3]");
  expect_msg(run_err("Tile", {iota_f({2, 3}), ints1d({2, -1})}), "repeats must be >= 0, got -1");
}

TEST(TensorOpsTest, TileOpset1TilesOneAxis) {
  Tensor y = run1("Tile", {f32({2, 2}, {1, 2, 3, 4}), Tensor::scalar<int64_t>(2), Tensor::scalar<int64_t>(1)}, {}, 1);
  EXPECT_EQ(y.dims(), (Dims{2, 4}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{1, 2, 1, 2, 3, 4, 3, 4}));
}

// ---- Pad ----

TEST(TensorOpsTest, PadConstantWithValueInput) {
  Tensor y = run1("Pad", {f32({2, 2}, {1, 2, 3, 4}), ints1d({0, 1, 1, 0}), Tensor::scalar<float>(9)});
  EXPECT_EQ(y.dims(), (Dims{3, 3}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{9, 1, 2, 9, 3, 4, 9, 9, 9}));
  // Negative pads crop.
  Tensor c = run1("Pad", {f32({1, 4}, {1, 2, 3, 4}), ints1d({0, -1, 0, 2})});
  EXPECT_EQ(vals<float>(c), (std::vector<float>{2, 3, 4, 0, 0}));
}

TEST(TensorOpsTest, PadReflectAndEdge) {
  Tensor x = f32({1, 3}, {1, 2, 3});
  EXPECT_EQ(vals<float>(run1("Pad", {x, ints1d({0, 2, 0, 2})}, {{"mode", Attribute::make_string("reflect")}})),
            (std::vector<float>{3, 2, 1, 2, 3, 2, 1}));
  EXPECT_EQ(vals<float>(run1("Pad", {x, ints1d({0, 2, 0, 1})}, {{"mode", Attribute::make_string("edge")}})),
            (std::vector<float>{1, 1, 1, 2, 3, 3}));
  // Pads wider than the axis keep reflecting (as numpy.pad does); a size-1 axis repeats.
  EXPECT_EQ(vals<float>(run1("Pad", {x, ints1d({0, 4, 0, 0})}, {{"mode", Attribute::make_string("reflect")}})),
            (std::vector<float>{1, 2, 3, 2, 1, 2, 3}));
  EXPECT_EQ(vals<float>(run1("Pad", {f32({1, 1}, {5}), ints1d({0, 1, 0, 2})}, {{"mode", Attribute::make_string("reflect")}})),
            (std::vector<float>{5, 5, 5, 5}));
}

TEST(TensorOpsTest, PadOldOpsetAttributes) {
  Tensor x = f32({2}, {1, 2});
  EXPECT_EQ(vals<float>(run1("Pad", {x}, {{"pads", ints_attr({1, 2})}, {"value", Attribute::make_float(-1)}}, 2)),
            (std::vector<float>{-1, 1, 2, -1, -1}));
  EXPECT_EQ(vals<float>(run1("Pad", {x}, {{"paddings", ints_attr({0, 1})}}, 1)), (std::vector<float>{1, 2, 0}));
}

TEST(TensorOpsTest, PadStringsAndInts) {
  Tensor y = run1("Pad", {strs({2}, {"a", "b"}), ints1d({1, 1}), strs({}, {"_"})});
  EXPECT_EQ(vals<std::string>(y), (std::vector<std::string>{"_", "a", "b", "_"}));
  Tensor e = run1("Pad", {strs({2}, {"a", "b"}), ints1d({0, 2}), Tensor()}, {{"mode", Attribute::make_string("edge")}});
  EXPECT_EQ(vals<std::string>(e), (std::vector<std::string>{"a", "b", "b", "b"}));
  Tensor i = run1("Pad", {Tensor::from_vector<int32_t>({2}, {7, 8}), ints1d({1, 0}), Tensor::scalar<int32_t>(-3)});
  EXPECT_EQ(vals<int32_t>(i), (std::vector<int32_t>{-3, 7, 8}));
}

TEST(TensorOpsTest, PadErrors) {
  Tensor x = iota_f({2, 3});
  expect_msg(run_err("Pad", {x, ints1d({1, 1})}), "pads has 2 entries, expected 4");
  expect_msg(run_err("Pad", {x, ints1d({0, -4, 0, 0})}), "negative");
  expect_msg(run_err("Pad", {x, ints1d({0, 0, 0, 0})}, {{"mode", Attribute::make_string("wrap")}}),
             "mode must be constant, reflect or edge, got 'wrap'");
  expect_msg(run_err("Pad", {x, ints1d({0, 0, 0, 0}), Tensor::scalar<double>(1)}), "dtypes must match");
  expect_msg(run_err("Pad", {Tensor(DType::kFloat32, {0}), ints1d({1, 0})}, {{"mode", Attribute::make_string("edge")}}),
             "non-empty axis");
}

// ---- ConstantOfShape / Range / Trilu / EyeLike ----

TEST(TensorOpsTest, ConstantOfShapeValueAndDefaults) {
  Tensor y = run1("ConstantOfShape", {ints1d({2, 3})},
                  {{"value", Attribute::make_tensor(Tensor::from_vector<int32_t>({1}, {7}))}});
  EXPECT_EQ(y.dtype(), DType::kInt32);
  EXPECT_EQ(vals<int32_t>(y), std::vector<int32_t>(6, 7));
  Tensor z = run1("ConstantOfShape", {ints1d({})});
  EXPECT_EQ(z.dtype(), DType::kFloat32);
  EXPECT_EQ(z.dims(), Dims{});
  EXPECT_EQ(vals<float>(z), std::vector<float>{0});
  EXPECT_EQ(run1("ConstantOfShape", {ints1d({4, 0})}).numel(), 0);
  expect_msg(run_err("ConstantOfShape", {ints1d({2, -1})}), "negative dim -1");
  expect_msg(run_err("ConstantOfShape", {ints1d({2})}, {{"value", Attribute::make_tensor(f32({2}, {1, 2}))}}),
             "exactly one element");
}

TEST(TensorOpsTest, RangeIntAndFloat) {
  Tensor y = run1("Range", {Tensor::scalar<int32_t>(10), Tensor::scalar<int32_t>(4), Tensor::scalar<int32_t>(-3)});
  EXPECT_EQ(vals<int32_t>(y), (std::vector<int32_t>{10, 7}));
  Tensor f = run1("Range", {Tensor::scalar<float>(1), Tensor::scalar<float>(2), Tensor::scalar<float>(0.25f)});
  EXPECT_EQ(vals<float>(f), (std::vector<float>{1, 1.25f, 1.5f, 1.75f}));
  EXPECT_EQ(run1("Range", {Tensor::scalar<int64_t>(5), Tensor::scalar<int64_t>(1), Tensor::scalar<int64_t>(1)}).dims(),
            Dims{0});
  expect_msg(run_err("Range", {Tensor::scalar<float>(0), Tensor::scalar<float>(1), Tensor::scalar<float>(0)}),
             "delta must not be 0");
  expect_msg(run_err("Range", {Tensor::scalar<float>(0), Tensor::scalar<double>(1), Tensor::scalar<float>(1)}),
             "one dtype");
}

TEST(TensorOpsTest, TriluUpperLowerWithK) {
  Tensor x = f32({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  EXPECT_EQ(vals<float>(run1("Trilu", {x, Tensor::scalar<int64_t>(1)})),
            (std::vector<float>{0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12}));
  EXPECT_EQ(vals<float>(run1("Trilu", {x, Tensor::scalar<int64_t>(-1)}, {{"upper", int_attr(0)}})),
            (std::vector<float>{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}));
  // Batched, default k = 0, lower.
  Tensor b = run1("Trilu", {iota_f({2, 2, 2})}, {{"upper", int_attr(0)}});
  EXPECT_EQ(vals<float>(b), (std::vector<float>{0, 0, 2, 3, 4, 0, 6, 7}));
  expect_msg(run_err("Trilu", {iota_f({3})}), "rank >= 2");
}

TEST(TensorOpsTest, EyeLikeDiagonalOffsetAndDtype) {
  Tensor y = run1("EyeLike", {Tensor(DType::kInt32, {3, 4})}, {{"k", int_attr(1)}});
  EXPECT_EQ(y.dtype(), DType::kInt32);
  EXPECT_EQ(vals<int32_t>(y), (std::vector<int32_t>{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
  Tensor d = run1("EyeLike", {Tensor(DType::kFloat32, {2, 2})}, {{"dtype", int_attr(11)}, {"k", int_attr(-1)}});
  EXPECT_EQ(d.dtype(), DType::kFloat64);
  EXPECT_EQ(vals<double>(d), (std::vector<double>{0, 0, 1, 0}));
  expect_msg(run_err("EyeLike", {iota_f({3})}), "must be 2-D");
}

// ---- DepthToSpace / SpaceToDepth ----

TEST(TensorOpsTest, DepthToSpaceDcrAndCrd) {
  // 8 channels, blocksize 2, 1x1 spatial: DCR reads channel (bh*2+bw)*2+c, CRD reads c*4+bh*2+bw.
  Tensor x = iota_f({1, 8, 1, 1});
  Tensor dcr = run1("DepthToSpace", {x}, {{"blocksize", int_attr(2)}});
  EXPECT_EQ(dcr.dims(), (Dims{1, 2, 2, 2}));
  EXPECT_EQ(vals<float>(dcr), (std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7}));
  Tensor crd = run1("DepthToSpace", {x}, {{"blocksize", int_attr(2)}, {"mode", Attribute::make_string("CRD")}});
  EXPECT_EQ(vals<float>(crd), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
  expect_msg(run_err("DepthToSpace", {iota_f({1, 6, 1, 1})}, {{"blocksize", int_attr(2)}}), "not divisible");
}

TEST(TensorOpsTest, SpaceToDepthInvertsDepthToSpace) {
  Tensor x = iota_f({1, 1, 2, 4});
  Tensor y = run1("SpaceToDepth", {x}, {{"blocksize", int_attr(2)}});
  EXPECT_EQ(y.dims(), (Dims{1, 4, 1, 2}));
  // Channel bh*2+bw holds x[2*h+bh][2*w+bw].
  EXPECT_EQ(vals<float>(y), (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  Tensor back = run1("DepthToSpace", {y}, {{"blocksize", int_attr(2)}});
  EXPECT_EQ(vals<float>(back), vals<float>(x));
  expect_msg(run_err("SpaceToDepth", {iota_f({1, 1, 3, 4})}, {{"blocksize", int_attr(2)}}), "divisible");
  expect_msg(run_err("SpaceToDepth", {iota_f({1, 1, 2, 2})}), "blocksize must be positive");
}

// ---- OneHot / NonZero / Compress / ReverseSequence ----

TEST(TensorOpsTest, OneHotAxisNegativeAndOutOfRangeIndices) {
  Tensor idx = i64({3}, {0, -1, 5});
  Tensor values = f32({2}, {-1, 7});
  Tensor y = run1("OneHot", {idx, Tensor::scalar<float>(3), values});
  EXPECT_EQ(y.dims(), (Dims{3, 3}));
  // -1 wraps to 2; 5 is out of range: a row of off values.
  EXPECT_EQ(vals<float>(y), (std::vector<float>{7, -1, -1, -1, -1, 7, -1, -1, -1}));
  Tensor t = run1("OneHot", {i64({2}, {1, 0}), Tensor::scalar<int64_t>(2), values}, {{"axis", int_attr(0)}});
  EXPECT_EQ(t.dims(), (Dims{2, 2}));
  EXPECT_EQ(vals<float>(t), (std::vector<float>{-1, 7, 7, -1}));
  expect_msg(run_err("OneHot", {idx, Tensor::scalar<float>(3), f32({3}, {0, 1, 2})}), "2 elements");
  expect_msg(run_err("OneHot", {idx, Tensor::scalar<float>(3), values}, {{"axis", int_attr(2)}}), "out of range");
}

TEST(TensorOpsTest, NonZeroNumbersAndStrings) {
  Tensor y = run1("NonZero", {f32({2, 3}, {0, 1.5f, 0, -2, 0, 3})});
  EXPECT_EQ(y.dims(), (Dims{2, 3}));
  EXPECT_EQ(vals<int64_t>(y), (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
  Tensor s = run1("NonZero", {strs({3}, {"", "x", "yz"})});
  EXPECT_EQ(vals<int64_t>(s), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(run1("NonZero", {Tensor(DType::kInt32, {2, 2})}).dims(), (Dims{2, 0}));
}

TEST(TensorOpsTest, CompressWithAndWithoutAxis) {
  Tensor x = iota_f({3, 2});
  Tensor cond = Tensor::from_vector<bool>({3}, {false, true, true});
  Tensor y = run1("Compress", {x, cond}, {{"axis", int_attr(0)}});
  EXPECT_EQ(y.dims(), (Dims{2, 2}));
  EXPECT_EQ(vals<float>(y), (std::vector<float>{2, 3, 4, 5}));
  Tensor c = run1("Compress", {x, Tensor::from_vector<bool>({2}, {false, true})}, {{"axis", int_attr(-1)}});
  EXPECT_EQ(vals<float>(c), (std::vector<float>{1, 3, 5}));
  // Without an axis the input is flattened; a shorter condition drops the tail.
  EXPECT_EQ(vals<float>(run1("Compress", {x, cond})), (std::vector<float>{1, 2}));
  Tensor s = run1("Compress", {strs({2}, {"a", "b"}), Tensor::from_vector<bool>({2}, {true, false})});
  EXPECT_EQ(vals<std::string>(s), std::vector<std::string>{"a"});
  EXPECT_EQ(run1("Compress", {x, Tensor::from_vector<bool>({1}, {false})}, {{"axis", int_attr(1)}}).dims(), (Dims{3, 0}));
  expect_msg(run_err("Compress", {x, Tensor::from_vector<bool>({4}, {true, true, true, true})}, {{"axis", int_attr(0)}}),
             "condition has 4 entries, axis length is 3");
}

TEST(TensorOpsTest, ReverseSequenceTimeAndBatchMajor) {
  // time_axis 0, batch_axis 1: x[t][b] = 10*t + b.
  Tensor x = f32({3, 2}, {0, 1, 10, 11, 20, 21});
  Tensor y = run1("ReverseSequence", {x, i64({2}, {3, 2})});
  EXPECT_EQ(vals<float>(y), (std::vector<float>{20, 11, 10, 1, 0, 21}));
  // batch_axis 0, time_axis 1, with a trailing feature dim.
  Tensor xb = f32({2, 3, 1}, {0, 1, 2, 10, 11, 12});
  Tensor yb = run1("ReverseSequence", {xb, i64({2}, {1, 3})}, {{"batch_axis", int_attr(0)}, {"time_axis", int_attr(1)}});
  EXPECT_EQ(vals<float>(yb), (std::vector<float>{0, 1, 2, 12, 11, 10}));
  expect_msg(run_err("ReverseSequence", {x, i64({2}, {4, 1})}), "sequence_lens[0] is 4, expected [0, 3]");
  expect_msg(run_err("ReverseSequence", {x, i64({3}, {1, 1, 1})}), "one per batch entry");
  expect_msg(run_err("ReverseSequence", {x, i64({2}, {1, 1})}, {{"batch_axis", int_attr(2)}}), "0 and 1");
}

}  // namespace
}  // namespace pyflame_rt
