// The native kernels of detection post-processing (topk_op, nonzero_op, gather_nd_op,
// compare_op, shape_op, nms_op, arith_op, int_reduce_op, roi_align_op, scatter_elements_op,
// Transpose on int64 in movement_op) against the reference kernels of the same nodes, edge
// cases included (empty tensors, ties, k = 0, negative axes and indices, int64 and float
// inputs), with CpuProgram::native_by_node() asserting that the native kernel ran; invalid
// inputs give an error naming the problem. And an If whose branches run natively (native_if.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstring>
#include <limits>
#include <tuple>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/device.h"
#include "devices/ref/ref_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

struct Case {
  std::string label;
  Node node;
  std::vector<std::pair<std::string, Tensor>> runtime, constants;
  int64_t opset = 17;
  bool expect_native = true;
  bool exact = true;  // false: float outputs within 1e-5 relative (float sums, oneDNN's log: ~3e-6)
};

Node make_node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out = {"y"}) {
  Node n;
  n.op_type = op;
  n.name = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

Tensor ints(Dims dims, std::vector<int64_t> v) { return Tensor::from_vector<int64_t>(std::move(dims), v); }
Tensor floats(Dims dims, std::vector<float> v) { return Tensor::from_vector<float>(std::move(dims), v); }

Graph graph_of(const Case& c) {
  Graph g;
  g.opset_imports[""] = c.opset;
  for (const auto& r : c.runtime) g.inputs.push_back({r.first, r.second.dtype(), Shape::from_dims(r.second.dims())});
  for (const auto& k : c.constants) g.initializers[k.first] = k.second;
  g.nodes.push_back(c.node);
  for (const auto& out : c.node.outputs) g.outputs.push_back({out, DType::kUndefined, Shape::unknown_rank()});
  return g;
}

std::vector<Value> feeds_of(const Case& c) {
  std::vector<Value> feeds;
  for (const auto& r : c.runtime) feeds.emplace_back(r.second);
  return feeds;
}

// Exact agreement: these kernels copy or compare elements (or round one operation as the
// reference does); `exact` false allows float outputs 1e-5 relative.
void expect_same(const Tensor& a, const Tensor& b, const std::string& label, bool exact = true) {
  ASSERT_EQ(a.dtype(), b.dtype()) << label;
  ASSERT_EQ(a.dims(), b.dims()) << label;
  if (exact || a.dtype() != DType::kFloat32) {
    EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0) << label;
    return;
  }
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float x = a.data<float>()[i], y = b.data<float>()[i];
    EXPECT_LE(std::fabs(x - y), 1e-5f * std::max(1.0f, std::fabs(y))) << label << " element " << i;
  }
}

void check(const Case& c, int threads = 2) {
  Graph g = graph_of(c);
  auto cpu = make_cpu_device(threads)->compile(g);
  auto ref = make_ref_device()->compile(g);
  ASSERT_TRUE(cpu.ok() && ref.ok()) << c.label;
  auto a = (*cpu)->run(feeds_of(c));
  auto b = (*ref)->run(feeds_of(c));
  ASSERT_TRUE(a.ok()) << c.label << ": " << a.status().to_string();
  ASSERT_TRUE(b.ok()) << c.label << ": " << b.status().to_string();
  for (size_t i = 0; i < c.node.outputs.size(); ++i) {
    expect_same((*a)[i].tensor, (*b)[i].tensor, c.label + " output " + std::to_string(i), c.exact);
  }
  auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
  ASSERT_NE(program, nullptr) << c.label;
  auto ran = program->native_by_node();
  ASSERT_EQ(ran.size(), 1u) << c.label;
  EXPECT_EQ(ran[0].second, c.expect_native) << c.label << ": native kernel " << (c.expect_native ? "did not run" : "ran");
}

// An invalid node: an error that names `expected` in its message, no crash.
void check_error(const Case& c, const std::string& expected) {
  auto cpu = make_cpu_device(1)->compile(graph_of(c));
  ASSERT_TRUE(cpu.ok()) << c.label;
  auto a = (*cpu)->run(feeds_of(c));
  ASSERT_FALSE(a.ok()) << c.label;
  EXPECT_NE(a.status().message().find(expected), std::string::npos) << c.label << ": " << a.status().to_string();
}

Case topk(const std::string& label, const Tensor& x, int64_t k, int64_t axis, bool largest) {
  Case c;
  c.label = label;
  c.node = make_node("TopK", {"x", "k"}, {"values", "indices"});
  c.node.attributes["axis"] = Attribute::make_int(axis);
  c.node.attributes["largest"] = Attribute::make_int(largest ? 1 : 0);
  c.runtime = {{"x", x}, {"k", ints({1}, {k})}};
  return c;
}

TEST(DetectionOpsTest, TopKAnyAxisBothDirections) {
  Tensor x = random_tensor({3, 40, 5}, 901);
  for (int64_t axis : {0, 1, 2, -1, -2}) {
    for (bool largest : {true, false}) {
      check(topk("TopK f32 axis " + std::to_string(axis) + (largest ? " largest" : " smallest"), x, 3, axis, largest));
    }
  }
  Tensor big = random_tensor({8, 3234}, 902);  // rows split over the team
  check(topk("TopK f32 many rows", big, 300, 1, true));
  check(topk("TopK k = len", x, 40, 1, true));
  check(topk("TopK k = 0", x, 0, 1, true));
  check(topk("TopK empty rows", Tensor(DType::kFloat32, {0, 6}), 2, 1, true));
  check(topk("TopK empty axis, k = 0", Tensor(DType::kFloat32, {4, 0}), 0, -1, false));
}

TEST(DetectionOpsTest, TopKTiesKeepTheLowerIndex) {
  Tensor i64 = random_ints<int64_t>({6, 50}, 0, 3, 903);  // many equal values
  Tensor i32 = random_ints<int32_t>({50, 6}, -2, 2, 904);
  Tensor f32 = Tensor::from_vector<float>({2, 6}, {1, 2, 2, 1, 2, 1, 0, 0, 0, 0, 0, 0});
  Tensor f64 = Tensor::from_vector<double>({6}, {3, -1, 3, 3, -1, 7});
  for (bool largest : {true, false}) {
    const std::string dir = largest ? " largest" : " smallest";
    check(topk("TopK int64 ties" + dir, i64, 10, 1, largest));
    check(topk("TopK int32 ties axis 0" + dir, i32, 7, 0, largest));
    check(topk("TopK f32 ties" + dir, f32, 4, -1, largest));
    check(topk("TopK f64 ties" + dir, f64, 5, 0, largest));
  }
  // The stable order by hand: largest of {1,2,2,1,2,1} -> 2@1, 2@2, 2@4, 1@0.
  auto cpu = make_cpu_device(1)->compile(graph_of(topk("", f32, 4, -1, true)));
  ASSERT_TRUE(cpu.ok());
  auto out = (*cpu)->run({Value(f32), Value(ints({1}, {4}))});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[1].tensor.to_int64_vector(), (std::vector<int64_t>{1, 2, 4, 0, 0, 1, 2, 3}));
}

TEST(DetectionOpsTest, TopKOpsetOneTakesKFromTheAttribute) {
  Case c;
  c.label = "TopK opset 1";
  c.opset = 1;
  c.node = make_node("TopK", {"x"}, {"values", "indices"});
  c.node.attributes["k"] = Attribute::make_int(2);
  c.runtime = {{"x", random_tensor({4, 9}, 905)}};
  check(c);
}

TEST(DetectionOpsTest, TopKRejectsABadKOrAxis) {
  Tensor x = random_tensor({3, 4}, 906);
  check_error(topk("k > len", x, 5, 1, true), "k = 5");
  check_error(topk("k < 0", x, -1, 1, true), "k = -1");
  check_error(topk("axis out of range", x, 1, 2, true), "axis");
}

TEST(DetectionOpsTest, NonZeroOnEveryDtype) {
  Tensor f = random_tensor({4, 5, 6}, 907);
  for (int64_t i = 0; i < f.numel(); i += 3) f.data<float>()[i] = (i % 2) ? 0.0f : -0.0f;
  Tensor b(DType::kBool, {7, 9});
  for (int64_t i = 0; i < b.numel(); ++i) b.data<bool>()[i] = (i * 7) % 3 == 0;
  std::vector<std::pair<std::string, Tensor>> inputs = {
      {"f32 with -0", f},
      {"bool", b},
      {"int64", random_ints<int64_t>({3, 11}, -1, 1, 908)},
      {"int32 1-D", random_ints<int32_t>({40}, 0, 2, 909)},
      {"uint8", random_ints<uint8_t>({2, 3, 4, 5}, 0, 1, 910)},
      {"f64", Tensor::from_vector<double>({2, 2}, {0.0, 1.5, -0.0, -2.0})},
      {"scalar", Tensor::scalar<float>(3.0f)},
      {"zero scalar", Tensor::scalar<int64_t>(0)},
      {"empty", Tensor(DType::kFloat32, {3, 0, 2})},
      {"all zero", Tensor::from_vector<float>({2, 3}, {0, 0, 0, 0, 0, 0})},
  };
  for (const auto& [label, x] : inputs) {
    Case c;
    c.label = "NonZero " + label;
    c.node = make_node("NonZero", {"x"});
    c.runtime = {{"x", x}};
    check(c);
  }
}

Case gather_nd(const std::string& label, const Tensor& x, const Tensor& idx, int64_t batch_dims) {
  Case c;
  c.label = label;
  c.node = make_node("GatherND", {"x", "i"});
  c.node.attributes["batch_dims"] = Attribute::make_int(batch_dims);
  c.runtime = {{"x", x}, {"i", idx}};
  return c;
}

TEST(DetectionOpsTest, GatherNDWithBatchDims) {
  Tensor x = random_tensor({4, 5, 6}, 911);
  check(gather_nd("GatherND tuples of 2", x, ints({3, 2}, {0, 1, 3, -1, -4, 2}), 0));
  check(gather_nd("GatherND tuples of 3", x, ints({2, 2, 3}, {0, 0, 0, 3, 4, 5, 1, 2, 3, -1, -1, -1}), 0));
  check(gather_nd("GatherND tuples of 1", x, ints({5, 1}, {3, 0, 2, 2, 1}), 0));
  check(gather_nd("GatherND batch_dims 1", x, ints({4, 2, 1}, {0, 4, 1, 3, 2, 2, 3, -5}), 1));
  check(gather_nd("GatherND batch_dims 2", x, ints({4, 5, 1}, std::vector<int64_t>(20, 5)), 2));
  check(gather_nd("GatherND int32 indices", x, Tensor::from_vector<int32_t>({2, 2}, {1, 1, 2, 0}), 0));
  check(gather_nd("GatherND int64 data", random_ints<int64_t>({6, 3}, -9, 9, 912), ints({4, 1}, {5, 0, 0, 2}), 0));
  check(gather_nd("GatherND no tuples", x, Tensor(DType::kInt64, {0, 2}), 0));
  // SSDLite's form: NonZero's transposed output addressing a [N, 4] box tensor.
  check(gather_nd("GatherND rows of boxes", random_tensor({3000, 4}, 913), random_ints<int64_t>({700, 1}, 0, 2999, 914), 0));
}

TEST(DetectionOpsTest, GatherNDRejectsBadIndices) {
  Tensor x = random_tensor({4, 5}, 915);
  check_error(gather_nd("out of range", x, ints({1, 2}, {4, 0}), 0), "out of range");
  check_error(gather_nd("too deep", x, ints({1, 3}, {0, 0, 0}), 0), "exceeds data rank");
  check_error(gather_nd("batch_dims too large", x, ints({4, 1}, {0, 0, 0, 0}), 2), "batch_dims");
  check_error(gather_nd("float indices", x, floats({1, 1}, {0}), 0), "int32 or int64");
}

TEST(DetectionOpsTest, ComparisonsBroadcastToBool) {
  struct Pair { std::string label; Tensor a, b; };
  Tensor f = random_tensor({3, 1, 4}, 916);
  Tensor g = random_tensor({5, 1}, 917);
  Tensor ia = random_ints<int64_t>({2, 3, 4}, -2, 2, 918), ib = random_ints<int64_t>({4}, -2, 2, 919);
  std::vector<Pair> pairs = {
      {"f32 [3,1,4] vs [5,1]", f, g},
      {"f32 same shape", f, random_tensor({3, 1, 4}, 920)},
      {"f32 vs scalar threshold", random_tensor({3234}, 921), Tensor::scalar<float>(0.05f)},
      {"scalar vs f32", Tensor::scalar<float>(0.0f), f},
      {"int64 [2,3,4] vs [4]", ia, ib},
      {"int64 equal values", ia, ia},
      {"int32", random_ints<int32_t>({6, 2}, 0, 3, 922), random_ints<int32_t>({6, 1}, 0, 3, 923)},
      {"f64", Tensor::from_vector<double>({3}, {1, 2, 3}), Tensor::from_vector<double>({1}, {2})},
      {"scalars", Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(4)},
      {"empty", Tensor(DType::kFloat32, {0, 3}), random_tensor({1, 3}, 924)},
  };
  for (const char* op : {"Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual"}) {
    for (const Pair& p : pairs) {
      Case c;
      c.label = std::string(op) + " " + p.label;
      c.node = make_node(op, {"a", "b"});
      c.runtime = {{"a", p.a}, {"b", p.b}};
      check(c);
    }
  }
  Tensor b1(DType::kBool, {4}), b2(DType::kBool, {2, 1});
  for (int i = 0; i < 4; ++i) b1.data<bool>()[i] = i % 2;
  b2.data<bool>()[0] = true;
  b2.data<bool>()[1] = false;
  Case eq;
  eq.label = "Equal bool";
  eq.node = make_node("Equal", {"a", "b"});
  eq.runtime = {{"a", b1}, {"b", b2}};
  check(eq);
  for (const char* op : {"And", "Or", "Xor"}) {
    Case c;
    c.label = std::string(op) + " bool [4] vs [2,1]";
    c.opset = 7;
    c.node = make_node(op, {"a", "b"});
    c.runtime = {{"a", b1}, {"b", b2}};
    check(c);
  }
  Case bad;
  bad.label = "Greater [3] vs [4]";
  bad.node = make_node("Greater", {"a", "b"});
  bad.runtime = {{"a", random_tensor({3}, 925)}, {"b", random_tensor({4}, 926)}};
  check_error(bad, "cannot be broadcast");
}

TEST(DetectionOpsTest, ShapeAndConstantOfShape) {
  for (auto [start, end] : std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {1, 3}, {-2, 4}, {-9, 9}, {3, 1}}) {
    Case c;
    c.label = "Shape start " + std::to_string(start) + " end " + std::to_string(end);
    c.node = make_node("Shape", {"x"});
    c.node.attributes["start"] = Attribute::make_int(start);
    c.node.attributes["end"] = Attribute::make_int(end);
    c.runtime = {{"x", random_tensor({2, 3, 1, 5}, 927)}};
    check(c);
  }
  Case s;
  s.label = "Shape of an int64 scalar";
  s.node = make_node("Shape", {"x"});
  s.runtime = {{"x", Tensor::scalar<int64_t>(4)}};
  check(s);
  struct Fill { std::string label; Tensor shape; bool has_value; Tensor value; };
  std::vector<Fill> fills = {
      {"default float zeros", ints({2}, {3, 4}), false, Tensor()},
      {"int64 7", ints({3}, {2, 1, 5}), true, Tensor::from_vector<int64_t>({1}, {7})},
      {"float -1.5", ints({1}, {9}), true, Tensor::from_vector<float>({1}, {-1.5f})},
      {"bool true", ints({2}, {2, 2}), true, Tensor::from_vector<bool>({1}, {true})},
      {"a zero dim", ints({2}, {0, 4}), true, Tensor::from_vector<int64_t>({1}, {1})},
      {"a scalar (empty shape)", Tensor(DType::kInt64, {0}), true, Tensor::from_vector<int32_t>({1}, {5})},
  };
  for (const Fill& f : fills) {
    Case c;
    c.label = "ConstantOfShape " + f.label;
    c.node = make_node("ConstantOfShape", {"s"});
    if (f.has_value) c.node.attributes["value"] = Attribute::make_tensor(f.value);
    c.runtime = {{"s", f.shape}};
    check(c);
  }
  Case neg;
  neg.label = "ConstantOfShape negative dim";
  neg.node = make_node("ConstantOfShape", {"s"});
  neg.runtime = {{"s", ints({2}, {2, -1})}};
  check_error(neg, "negative dim");
}

TEST(DetectionOpsTest, RangeFloorAndCeil) {
  struct R { std::string label; Tensor s, l, d; };
  std::vector<R> ranges = {
      {"int64 up", Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(20), Tensor::scalar<int64_t>(3)},
      {"int64 down", Tensor::scalar<int64_t>(10), Tensor::scalar<int64_t>(-5), Tensor::scalar<int64_t>(-4)},
      {"int64 empty", Tensor::scalar<int64_t>(5), Tensor::scalar<int64_t>(5), Tensor::scalar<int64_t>(1)},
      {"int32", Tensor::scalar<int32_t>(-3), Tensor::scalar<int32_t>(9), Tensor::scalar<int32_t>(2)},
      {"float (anchor grid)", Tensor::scalar<float>(0.0f), Tensor::scalar<float>(320.0f), Tensor::scalar<float>(16.0f)},
      {"float fractional", Tensor::scalar<float>(0.1f), Tensor::scalar<float>(1.0f), Tensor::scalar<float>(0.3f)},
      {"double", Tensor::scalar<double>(1.0), Tensor::scalar<double>(-2.0), Tensor::scalar<double>(-0.25)},
  };
  for (const R& r : ranges) {
    Case c;
    c.label = "Range " + r.label;
    c.node = make_node("Range", {"s", "l", "d"});
    c.runtime = {{"s", r.s}, {"l", r.l}, {"d", r.d}};
    check(c);
  }
  Case zero;
  zero.label = "Range delta 0";
  zero.node = make_node("Range", {"s", "l", "d"});
  zero.runtime = {{"s", Tensor::scalar<int64_t>(0)}, {"l", Tensor::scalar<int64_t>(3)}, {"d", Tensor::scalar<int64_t>(0)}};
  check_error(zero, "delta must not be 0");
  Tensor x = random_tensor({3, 7}, 963);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] *= 5;
  for (const char* op : {"Floor", "Ceil"}) {
    for (const Tensor& in : {x, Tensor::scalar<float>(-2.5f), Tensor::from_vector<double>({3}, {-0.5, 0.0, 7.25})}) {
      Case c;
      c.label = std::string(op) + " of " + dims_to_string(in.dims());
      c.node = make_node(op, {"x"});
      c.runtime = {{"x", in}};
      check(c);
    }
  }
}

TEST(DetectionOpsTest, TransposeOfInt64) {
  for (const std::vector<int64_t>& perm : std::vector<std::vector<int64_t>>{{1, 0, 2}, {2, 0, 1}, {}}) {
    Case c;
    c.label = "Transpose int64 perm of " + std::to_string(perm.size());
    c.node = make_node("Transpose", {"x"});
    if (!perm.empty()) c.node.attributes["perm"] = Attribute::make_ints(perm);
    c.runtime = {{"x", random_ints<int64_t>({3, 4, 5}, -100, 100, 928)}};
    check(c);
  }
  Case nz;
  nz.label = "Transpose of NonZero's [2, 0]";
  nz.node = make_node("Transpose", {"x"});
  nz.runtime = {{"x", Tensor(DType::kInt64, {2, 0})}};
  check(nz);
}

TEST(DetectionOpsTest, ActivationsOnScalarsAndVectors) {
  for (const char* op : {"Sqrt", "Log", "Exp", "Relu", "Abs"}) {
    for (const Tensor& x : {Tensor::scalar<float>(2.5f), random_tensor({1000}, 960), Tensor(DType::kFloat32, {0})}) {
      Case c;
      c.label = std::string(op) + " of " + dims_to_string(x.dims());
      c.node = make_node(op, {"x"});
      Tensor positive = x.clone();
      for (int64_t i = 0; i < positive.numel(); ++i) positive.data<float>()[i] = 0.5f + std::fabs(positive.data<float>()[i]);
      c.runtime = {{"x", positive}};
      check(c);  // exactly: IEEE sqrt, abs and relu in oneDNN; Log/Exp in double as the reference
    }
  }
  // Sigmoid is not computed exactly by oneDNN's 1-D chains: a short vector runs on our loop
  // (small_eltwise.h, a few ulps), a long one on the reference.
  Case sigmoid;
  sigmoid.label = "Sigmoid of a short vector (our loop)";
  sigmoid.node = make_node("Sigmoid", {"x"});
  sigmoid.runtime = {{"x", random_tensor({10}, 962)}};
  sigmoid.exact = false;
  check(sigmoid);
  sigmoid.label = "Sigmoid of a long vector (the reference)";
  sigmoid.runtime = {{"x", random_tensor({5000}, 963)}};
  sigmoid.exact = true;
  sigmoid.expect_native = false;
  check(sigmoid);
  Case clip;
  clip.label = "Clip of a vector";
  clip.node = make_node("Clip", {"x", "lo", "hi"});
  clip.constants = {{"lo", Tensor::scalar<float>(2.0f)}, {"hi", Tensor::scalar<float>(5.0f)}};
  Tensor levels = random_tensor({64}, 961);
  for (int64_t i = 0; i < levels.numel(); ++i) levels.data<float>()[i] = std::floor(levels.data<float>()[i] * 8);
  clip.runtime = {{"x", levels}};
  check(clip);
}

TEST(DetectionOpsTest, ArithmeticOnIntegersScalarsAndVariadics) {
  Tensor ia = ints({2, 3}, {7, -7, 0, 9, -9, 1 << 20}), ib = ints({3}, {2, 0, -4});
  Tensor fa = random_tensor({3, 1, 4}, 940), fb = random_tensor({5, 1}, 941);
  struct Pair { std::string label; Tensor a, b; };
  std::vector<Pair> pairs = {
      {"int64 [2,3] vs [3] (a zero divisor)", ia, ib},
      {"int32 vs scalar", random_ints<int32_t>({4, 5}, -50, 50, 942), Tensor::scalar<int32_t>(-3)},
      {"f64", Tensor::from_vector<double>({3}, {1.5, -2, 8}), Tensor::from_vector<double>({1}, {0.25})},
      {"f32 scalars (rank 0)", Tensor::scalar<float>(1.25f), Tensor::scalar<float>(-3.0f)},
      {"f32 1-D", random_tensor({7}, 943), random_tensor({7}, 944)},
      {"f32 two-sided broadcast", fa, fb},
      {"int64 empty", Tensor(DType::kInt64, {0, 3}), ib},
  };
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const Pair& p : pairs) {
      Case c;
      c.label = std::string(op) + " " + p.label;
      c.node = make_node(op, {"a", "b"});
      c.runtime = {{"a", p.a}, {"b", p.b}};
      check(c);
    }
  }
  Tensor nan = Tensor::from_vector<float>({3}, {1.0f, std::numeric_limits<float>::quiet_NaN(), -1.0f});
  for (const char* op : {"Max", "Min", "Sum"}) {
    Case one;
    one.label = std::string(op) + " of one input";
    one.node = make_node(op, {"a"});
    one.runtime = {{"a", ia}};
    check(one);
    Case three;
    three.label = std::string(op) + " of three broadcast f32";
    three.node = make_node(op, {"a", "b", "c"});
    three.runtime = {{"a", fa}, {"b", fb}, {"c", Tensor::scalar<float>(0.1f)}};
    three.exact = false;  // the reference sums three floats in double, we round after each
    check(three);
    Case with_nan;
    with_nan.label = std::string(op) + " with NaN";
    with_nan.node = make_node(op, {"a", "b"});
    with_nan.runtime = {{"a", nan}, {"b", floats({1}, {0.0f})}};
    check(with_nan);
    Case i64;
    i64.label = std::string(op) + " int64 clamp";
    i64.node = make_node(op, {"a", "b"});
    i64.runtime = {{"a", ia}, {"b", Tensor::scalar<int64_t>(1)}};
    check(i64);
  }
  Case mixed;
  mixed.label = "Add int64 + int32";
  mixed.node = make_node("Add", {"a", "b"});
  mixed.runtime = {{"a", ia}, {"b", Tensor::from_vector<int32_t>({1}, {1})}};
  check_error(mixed, "int32");
}

// Mod as RetinaNet and FCOS use it (anchor indices), both remainder conventions, and Not.
TEST(DetectionOpsTest, ModBothConventionsAndNot) {
  Tensor ia = ints({2, 3}, {7, -7, 0, 9, -9, 1 << 20}), ib = ints({3}, {2, 0, -4});
  struct ModCase { std::string label; Tensor a, b; int64_t fmod; };
  std::vector<ModCase> cases = {
      {"int64 python-style, signs and a zero divisor", ia, ib, 0},
      {"int64 fmod=1", ia, ib, 1},
      {"int32 vs scalar", random_ints<int32_t>({4, 5}, -50, 50, 945), Tensor::scalar<int32_t>(-3), 0},
      {"f32 fmod=1 broadcast", random_tensor({3, 4}, 946), floats({4}, {0.3f, -0.7f, 2.0f, 1e-3f}), 1},
      {"f64 fmod=1", Tensor::from_vector<double>({3}, {5.5, -5.5, 1.0}), Tensor::from_vector<double>({1}, {2.0}), 1},
      {"int64 empty", Tensor(DType::kInt64, {0, 3}), ib, 0},
  };
  for (const ModCase& m : cases) {
    Case c;
    c.label = "Mod " + m.label;
    c.node = make_node("Mod", {"a", "b"});
    c.node.attributes["fmod"] = Attribute::make_int(m.fmod);
    c.runtime = {{"a", m.a}, {"b", m.b}};
    check(c);
  }
  Case float_without_fmod;
  float_without_fmod.label = "Mod f32 with fmod=0";
  float_without_fmod.node = make_node("Mod", {"a", "b"});
  float_without_fmod.runtime = {{"a", random_tensor({3}, 947)}, {"b", random_tensor({3}, 948)}};
  check_error(float_without_fmod, "fmod must be 1");
  Case negate;
  negate.label = "Not";
  negate.node = make_node("Not", {"a"});
  negate.runtime = {{"a", Tensor::from_vector<bool>({2, 3}, {true, false, false, true, true, false})}};
  check(negate);
}

TEST(DetectionOpsTest, IntegerReductionsOverAnyAxes) {
  Tensor x = random_ints<int64_t>({3, 4, 5}, -20, 20, 945);
  Tensor y = random_ints<int32_t>({6, 2}, -9, 9, 946);
  for (const char* op : {"ReduceSum", "ReduceProd", "ReduceMin", "ReduceMax"}) {
    for (const std::vector<int64_t>& axes : std::vector<std::vector<int64_t>>{{}, {0}, {-1}, {0, 2}, {1}}) {
      for (int64_t keep : {0, 1}) {
        Case c;
        c.label = std::string(op) + " int64 axes of " + std::to_string(axes.size()) + " keepdims " + std::to_string(keep);
        c.opset = 13;  // axes an attribute (ReduceSum: an input)
        c.node = make_node(op, {"x"});
        if (!axes.empty()) {
          if (std::string(op) == "ReduceSum") {
            c.node.inputs.push_back("axes");
            c.runtime.push_back({"axes", ints({static_cast<int64_t>(axes.size())}, axes)});
          } else {
            c.node.attributes["axes"] = Attribute::make_ints(axes);
          }
        }
        c.node.attributes["keepdims"] = Attribute::make_int(keep);
        c.runtime.insert(c.runtime.begin(), {"x", x});
        check(c);
      }
    }
    Case small;
    small.label = std::string(op) + " int32 all axes";
    small.opset = 13;
    small.node = make_node(op, {"x"});
    small.node.attributes["keepdims"] = Attribute::make_int(0);
    small.runtime = {{"x", y}};
    check(small);
    Case pair;  // SSDLite: min(k, count) over a [2] vector
    pair.label = std::string(op) + " int64 [2]";
    pair.opset = 13;
    pair.node = make_node(op, {"x"});
    pair.node.attributes["keepdims"] = Attribute::make_int(0);
    pair.runtime = {{"x", ints({2}, {300, 17})}};
    check(pair);
  }
  Case bad;
  bad.label = "ReduceMin axis 3 of rank 3";
  bad.opset = 13;
  bad.node = make_node("ReduceMin", {"x"});
  bad.node.attributes["axes"] = Attribute::make_ints({3});
  bad.runtime = {{"x", x}};
  check_error(bad, "axis");
}

Case roi_align(const std::string& label, const Tensor& x, const Tensor& rois, const Tensor& idx, int64_t opset) {
  Case c;
  c.label = label;
  c.opset = opset;
  c.node = make_node("RoiAlign", {"x", "rois", "idx"});
  c.node.attributes["output_height"] = Attribute::make_int(7);
  c.node.attributes["output_width"] = Attribute::make_int(5);
  c.runtime = {{"x", x}, {"rois", rois}, {"idx", idx}};
  c.exact = false;  // float sums, the reference's in double
  return c;
}

TEST(DetectionOpsTest, RoiAlignAvgAsTheReference) {
  Tensor x = random_tensor({2, 5, 12, 15}, 947);
  // Inside, partly outside, past the far edge, tiny, and one wider than the map.
  Tensor rois = floats({5, 4}, {1, 1, 9, 7, -3, -2, 4, 5, 10, 8, 20, 16, 3.2f, 4.1f, 3.6f, 4.3f, -5, 0, 30, 11});
  Tensor idx = ints({5}, {0, 1, 1, 0, 1});
  for (int64_t opset : {10, 16}) {
    for (int64_t ratio : {0, 2}) {
      Case c = roi_align("RoiAlign opset " + std::to_string(opset) + " ratio " + std::to_string(ratio), x, rois, idx, opset);
      c.node.attributes["sampling_ratio"] = Attribute::make_int(ratio);
      check(c);
    }
  }
  Case scaled = roi_align("RoiAlign spatial_scale 0.5, output_half_pixel, int32 indices", x, rois,
                          Tensor::from_vector<int32_t>({5}, {1, 0, 0, 1, 0}), 16);
  scaled.node.attributes["spatial_scale"] = Attribute::make_float(0.5f);
  scaled.node.attributes["coordinate_transformation_mode"] = Attribute::make_string("output_half_pixel");
  check(scaled);
  Tensor many = random_tensor({300, 4}, 948);  // regions split over the team
  for (int64_t i = 0; i < 300; ++i) {
    float* b = many.data<float>() + i * 4;
    b[0] = 6 + 6 * b[0];
    b[1] = 5 + 5 * b[1];
    b[2] = b[0] + 4 + 3 * b[2];
    b[3] = b[1] + 3 + 2 * b[3];
  }
  check(roi_align("RoiAlign 300 regions", random_tensor({1, 16, 12, 15}, 949), many, Tensor(DType::kInt64, {300}), 16));
  check(roi_align("RoiAlign no regions", x, Tensor(DType::kFloat32, {0, 4}), Tensor(DType::kInt64, {0}), 16));
  Case max = roi_align("RoiAlign max mode (the reference)", x, rois, idx, 16);
  max.node.attributes["mode"] = Attribute::make_string("max");
  max.expect_native = false;
  check(max);
  check_error(roi_align("RoiAlign batch index 2 of 2", x, rois, ints({5}, {0, 1, 2, 0, 1}), 16), "batch index 2");
  Case zero = roi_align("RoiAlign output_height 0", x, rois, idx, 16);
  zero.node.attributes["output_height"] = Attribute::make_int(0);
  check_error(zero, "output_height 0");
}

Case scatter(const std::string& label, const Tensor& x, const Tensor& idx, const Tensor& upd, int64_t axis) {
  Case c;
  c.label = label;
  c.node = make_node("ScatterElements", {"x", "i", "u"});
  c.node.attributes["axis"] = Attribute::make_int(axis);
  c.runtime = {{"x", x}, {"i", idx}, {"u", upd}};
  return c;
}

TEST(DetectionOpsTest, ScatterElementsOnAnyAxis) {
  Tensor x = random_tensor({4, 5, 6}, 950);
  for (int64_t axis : {0, 1, 2, -1}) {
    const int64_t len = x.dim(static_cast<size_t>(axis < 0 ? axis + 3 : axis));
    Tensor idx = random_ints<int64_t>({3, 4, 5}, static_cast<int>(-len), static_cast<int>(len - 1), 951);  // negatives, repeats
    check(scatter("ScatterElements axis " + std::to_string(axis), x, idx, random_tensor({3, 4, 5}, 952), axis));
  }
  check(scatter("ScatterElements int32 indices, int64 data", random_ints<int64_t>({6, 3}, -9, 9, 953),
                Tensor::from_vector<int32_t>({2, 3}, {5, 0, 1, -1, 2, 2}), random_ints<int64_t>({2, 3}, 100, 200, 954), 0));
  check(scatter("ScatterElements no updates", x, Tensor(DType::kInt64, {0, 5, 6}), Tensor(DType::kFloat32, {0, 5, 6}), 0));
  // Faster R-CNN's form: an expanded [R, 1, 1, 1] row index over [R, C, 7, 7].
  Tensor rows(DType::kInt64, {10, 8, 7, 7});
  for (int64_t i = 0; i < rows.numel(); ++i) rows.data<int64_t>()[i] = (i / (8 * 49) * 3) % 12;
  check(scatter("ScatterElements rows of pooled boxes", random_tensor({12, 8, 7, 7}, 955), rows, random_tensor({10, 8, 7, 7}, 956), 0));
  Case add = scatter("ScatterElements reduction add (the reference)", x, Tensor(DType::kInt64, {1, 1, 1}),
                     random_tensor({1, 1, 1}, 957), 0);
  add.node.attributes["reduction"] = Attribute::make_string("add");
  add.opset = 18;
  add.expect_native = false;
  check(add);
  check_error(scatter("ScatterElements index 4 of 4", x, ints({1, 1, 1}, {4}), random_tensor({1, 1, 1}, 958), 0), "out of range");
  check_error(scatter("ScatterElements shapes differ", x, ints({1, 1, 1}, {0}), random_tensor({1, 1, 2}, 959), 0),
              "same shape");
}

// Boxes in torchvision's batched-NMS form: per class, `per_class` boxes around a few centres
// (so they overlap and suppress), shifted by class so that classes never overlap.
Tensor class_offset_boxes(int64_t classes, int64_t per_class, uint32_t seed) {
  Tensor u = random_tensor({classes * per_class, 4}, seed);
  Tensor boxes(DType::kFloat32, {1, classes * per_class, 4});
  float* b = boxes.data<float>();
  for (int64_t i = 0; i < classes * per_class; ++i) {
    const float* r = u.data<float>() + i * 4;
    const float off = static_cast<float>(i / per_class) * 321.0f;
    const float cx = 80.0f * static_cast<float>(i % 3) + 20 * r[0], cy = 100 + 20 * r[1];
    const float w = 30 + 25 * r[2], h = 30 + 25 * r[3];
    b[i * 4 + 0] = cx - w / 2 + off;
    b[i * 4 + 1] = cy - h / 2 + off;
    b[i * 4 + 2] = cx + w / 2 + off;
    b[i * 4 + 3] = cy + h / 2 + off;
  }
  return boxes;
}

Case nms(const std::string& label, const Tensor& boxes, const Tensor& scores, int64_t max_out, float iou,
         const float* score_thr, int64_t center = 0) {
  Case c;
  c.label = label;
  c.node = make_node("NonMaxSuppression", {"b", "s", "m", "i", score_thr ? "t" : ""});
  if (!score_thr) c.node.inputs.pop_back();
  if (center) c.node.attributes["center_point_box"] = Attribute::make_int(center);
  c.runtime = {{"b", boxes}, {"s", scores}, {"m", ints({1}, {max_out})}, {"i", floats({1}, {iou})}};
  if (score_thr) c.runtime.push_back({"t", floats({1}, {*score_thr})});
  return c;
}

TEST(DetectionOpsTest, NonMaxSuppressionAsTheReference) {
  Tensor boxes = class_offset_boxes(30, 100, 929);
  Tensor scores = random_tensor({1, 1, 3000}, 930);
  const float thr = 0.2f, none = -2.0f;
  check(nms("NMS batched classes", boxes, scores, 1000000, 0.5f, &thr));
  check(nms("NMS no score threshold", boxes, scores, 1000000, 0.45f, nullptr));
  check(nms("NMS max 3 per class", boxes, scores, 3, 0.5f, &none));
  check(nms("NMS max 0", boxes, scores, 0, 0.5f, &thr));
  check(nms("NMS iou 0 (any overlap suppresses)", boxes, scores, 100, 0.0f, &thr));
  check(nms("NMS negative iou threshold", class_offset_boxes(3, 20, 931), random_tensor({1, 1, 60}, 932), 100, -0.5f, &thr));
  // Several batches and classes, corners in either order, and the center form.
  Tensor mixed = random_tensor({2, 50, 4}, 933);
  for (int64_t i = 0; i < mixed.numel(); ++i) mixed.data<float>()[i] *= 10;
  Tensor mixed_scores = random_tensor({2, 3, 50}, 934);
  check(nms("NMS 2 batches 3 classes", mixed, mixed_scores, 10, 0.3f, &none));
  Tensor centred = random_tensor({1, 60, 4}, 935);
  for (int64_t i = 0; i < centred.numel(); ++i) centred.data<float>()[i] = 5 + 4 * centred.data<float>()[i];
  check(nms("NMS center_point_box", centred, random_tensor({1, 2, 60}, 936), 20, 0.4f, &none, 1));
  // Equal scores: the lower index first.
  Tensor tie_boxes = floats({1, 3, 4}, {0, 0, 1, 1, 0, 0, 1, 1, 5, 5, 6, 6});
  check(nms("NMS tied scores", tie_boxes, floats({1, 1, 3}, {0.5f, 0.5f, 0.5f}), 10, 0.5f, nullptr));
  check(nms("NMS no boxes", Tensor(DType::kFloat32, {1, 0, 4}), Tensor(DType::kFloat32, {1, 1, 0}), 10, 0.5f, &thr));
  Case bad = nms("NMS boxes [1, 3, 3]", random_tensor({1, 3, 3}, 937), random_tensor({1, 1, 3}, 938), 5, 0.5f, nullptr);
  check_error(bad, "must be [B, N, 4]");
}

// Equal scores go in index order, as ONNX Runtime 1.30 gives them (observed with onnxruntime-node
// on these very inputs, 2026-11-30): disjoint boxes scored {.5, .9, .5, .9, .5, .7} come out
// 1, 3, 5, 0, 2, 4, and of three overlapping boxes with one score the first suppresses the rest.
// Checked on both devices: the native kernel and its reference must keep ORT's order.
TEST(DetectionOpsTest, NonMaxSuppressionTiesInIndexOrderAsOnnxRuntime) {
  std::vector<float> disjoint;
  for (int i = 0; i < 6; ++i) disjoint.insert(disjoint.end(), {10.f * i, 0, 10.f * i + 5, 5});
  const std::vector<std::tuple<Tensor, Tensor, std::vector<int64_t>>> cases = {
      {floats({1, 6, 4}, disjoint), floats({1, 1, 6}, {.5f, .9f, .5f, .9f, .5f, .7f}), {1, 3, 5, 0, 2, 4}},
      {floats({1, 3, 4}, {0, 0, 10, 10, 0, 1, 10, 11, 0, 2, 10, 12}), floats({1, 1, 3}, {.5f, .5f, .5f}), {0}},
  };
  for (const auto& [boxes, scores, want] : cases) {
    Case c = nms("NMS ties", boxes, scores, 10, 0.5f, nullptr);
    Graph g = graph_of(c);
    for (bool native : {true, false}) {
      auto exe = native ? make_cpu_device(1)->compile(g) : make_ref_device()->compile(g);
      ASSERT_TRUE(exe.ok()) << exe.status().to_string();
      auto out = (*exe)->run(feeds_of(c));
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      std::vector<int64_t> sel = (*out)[0].tensor.to_int64_vector(), picked;
      for (size_t k = 2; k < sel.size(); k += 3) picked.push_back(sel[k]);
      EXPECT_EQ(picked, want) << (native ? "native" : "reference");
    }
  }
}

// If whose else branch is torchvision's tail (Greater, NonZero, GatherND, TopK on outer-scope
// values) and whose then branch is a Constant: run with both conditions against the
// interpreter, with every node of both branches reported native.
TEST(DetectionOpsTest, IfBranchesRunNatively) {
  auto then_g = std::make_shared<Graph>();
  Node k = make_node("Constant", {}, {"then_out"});
  k.attributes["value"] = Attribute::make_tensor(floats({1}, {-1.0f}));
  then_g->nodes.push_back(k);
  then_g->outputs.push_back({"then_out", DType::kFloat32, Shape::unknown_rank()});
  auto else_g = std::make_shared<Graph>();
  else_g->nodes.push_back(make_node("Greater", {"scores", "thr"}, {"keep"}));
  else_g->nodes.push_back(make_node("NonZero", {"keep"}, {"nz"}));
  Node tr = make_node("Transpose", {"nz"}, {"idx"});
  tr.attributes["perm"] = Attribute::make_ints({1, 0});
  else_g->nodes.push_back(tr);
  else_g->nodes.push_back(make_node("GatherND", {"scores", "idx"}, {"kept"}));
  Node top = make_node("TopK", {"kept", "k"}, {"else_out", "where"});
  top.attributes["largest"] = Attribute::make_int(1);
  else_g->nodes.push_back(top);
  else_g->outputs.push_back({"else_out", DType::kFloat32, Shape::unknown_rank()});
  for (Node& n : else_g->nodes) n.name = "else/" + n.name;

  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {{"cond", DType::kBool, Shape::from_dims({})}, {"x", DType::kFloat32, Shape::from_dims({4, 16})}};
  g.initializers["thr"] = floats({}, {0.0f});
  g.initializers["k"] = ints({1}, {5});
  Node relu = make_node("Relu", {"x"}, {"scores"});
  g.nodes.push_back(relu);
  Node iff = make_node("If", {"cond"}, {"y"});
  iff.attributes["then_branch"] = Attribute::make_graph(then_g);
  iff.attributes["else_branch"] = Attribute::make_graph(else_g);
  g.nodes.push_back(iff);
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});

  auto cpu = make_cpu_device(2)->compile(g);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  Tensor x = random_tensor({4, 16}, 939);
  // Expected by hand: then -> [-1]; else -> the 5 largest positive elements of x, descending.
  std::vector<float> positive;
  for (int64_t i = 0; i < x.numel(); ++i) if (x.data<float>()[i] > 0) positive.push_back(x.data<float>()[i]);
  ASSERT_GE(positive.size(), 5u);
  std::sort(positive.begin(), positive.end(), std::greater<float>());
  positive.resize(5);
  for (bool cond : {false, true}) {
    auto a = (*cpu)->run({Value(Tensor::from_vector<bool>({}, {cond})), Value(x)});
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    expect_same((*a)[0].tensor, cond ? floats({1}, {-1.0f}) : floats({5}, positive), cond ? "then" : "else");
  }
  EXPECT_TRUE((*cpu)->fallback_nodes().empty()) << ::testing::PrintToString((*cpu)->fallback_nodes());
  int branch_nodes = 0;
  for (const NodeKernel& n : (*cpu)->node_kernels()) {
    EXPECT_EQ(n.kernel, "native") << n.op_type << " '" << n.node << "'";
    branch_nodes += n.node.rfind("else/", 0) == 0;
  }
  EXPECT_EQ(branch_nodes, 5);
  // A condition of two elements: an error naming it.
  auto bad = (*cpu)->run({Value(Tensor::from_vector<bool>({2}, {true, false})), Value(x)});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("one element"), std::string::npos) << bad.status().to_string();
}

}  // namespace
}  // namespace pyflame_rt
