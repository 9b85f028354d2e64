// The native kernels of reduce_op, copy_op (copies, and Reshape/Squeeze/Unsqueeze as views),
// broadcast_op, batchnorm_op, softmax_op, resize_op, cast_op, erf_op and instance_norm_op
// against the reference kernels of the same nodes, in every rank models use (1-D/2-D/3-D
// data), with CpuProgram::native_by_node() asserting that the native kernel ran (no silent
// fallback).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "devices/cpu/cpu_device.h"
#include "devices/ref/ref_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

struct Case {
  std::string label;
  Node node;
  std::vector<std::pair<std::string, Tensor>> runtime, constants;
  int64_t opset = 13;
  bool expect_native = true;
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

void expect_close(const Tensor& a, const Tensor& b, const std::string& label) {
  ASSERT_EQ(a.dtype(), b.dtype()) << label;
  ASSERT_EQ(a.dims(), b.dims()) << label;
  if (a.dtype() == DType::kString) {
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<std::string>()[i], b.data<std::string>()[i]) << label;
    return;
  }
  if (a.dtype() != DType::kFloat32) {
    EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0) << label;
    return;
  }
  double scale = 1e-6, err = 0;
  for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(b.data<float>()[i])));
  for (int64_t i = 0; i < b.numel(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  }
  EXPECT_LT(err / scale, 2e-6) << label;
}

void check(const Case& c, int threads = 2) {
  Graph g;
  g.opset_imports[""] = c.opset;
  std::vector<Value> feeds;
  for (const auto& r : c.runtime) {
    g.inputs.push_back({r.first, r.second.dtype(), Shape::from_dims(r.second.dims())});
    feeds.emplace_back(r.second);
  }
  for (const auto& k : c.constants) g.initializers[k.first] = k.second;
  g.nodes.push_back(c.node);
  for (const auto& out : c.node.outputs) g.outputs.push_back({out, DType::kUndefined, Shape::unknown_rank()});
  auto cpu = make_cpu_device(threads)->compile(g);
  auto ref = make_ref_device()->compile(g);
  ASSERT_TRUE(cpu.ok() && ref.ok()) << c.label;
  auto a = (*cpu)->run(feeds);
  auto b = (*ref)->run(feeds);
  ASSERT_TRUE(a.ok()) << c.label << ": " << a.status().to_string();
  ASSERT_TRUE(b.ok()) << c.label << ": " << b.status().to_string();
  for (size_t i = 0; i < c.node.outputs.size(); ++i) expect_close((*a)[i].tensor, (*b)[i].tensor, c.label + " output " + std::to_string(i));
  auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
  ASSERT_NE(program, nullptr) << c.label;
  auto ran = program->native_by_node();
  ASSERT_EQ(ran.size(), 1u) << c.label;
  EXPECT_EQ(ran[0].second, c.expect_native) << c.label << ": native kernel " << (c.expect_native ? "did not run" : "ran");
}

TEST(NativeKernelsTest, Reductions) {
  const std::vector<std::string> ops = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1",
                                        "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"};
  struct Shape_ { Dims x; std::vector<int64_t> axes; int64_t keepdims; };
  const std::vector<Shape_> shapes = {
      {{2, 5, 7}, {2}, 1},            // last axis of a 1-D signal batch
      {{2, 5, 7}, {1}, 0},            // middle axis: columns
      {{3, 6, 9, 11}, {2, 3}, 1},     // spatial mean (squeeze-excite)
      {{1, 300, 40}, {1}, 1},         // over time, few rows: column blocks on the team
      {{64, 1024}, {-1}, 0},          // rows, large enough for the team
      {{2, 3, 4, 5, 6}, {2, 3, 4}, 1}, // 3-D volume
      {{4, 1, 6}, {0, 1}, 1},         // a size-1 axis between reduced ones
      {{5, 6}, {}, 0},                // empty axes: everything
  };
  uint32_t seed = 1;
  for (const auto& op : ops) {
    for (const auto& s : shapes) {
      Case c;
      c.label = op + " x" + dims_to_string(s.x) + " axes" + dims_to_string(s.axes);
      // ReduceSum takes axes as an input (opset 13), the others as an attribute until 18.
      c.node = make_node(op, {"x"});
      if (op == "ReduceSum") {
        if (!s.axes.empty()) {
          c.node.inputs.push_back("axes");
          c.constants.push_back({"axes", ints({static_cast<int64_t>(s.axes.size())}, s.axes)});
        }
      } else if (!s.axes.empty()) {
        c.node.attributes["axes"] = Attribute::make_ints(s.axes);
      }
      c.node.attributes["keepdims"] = Attribute::make_int(s.keepdims);
      Tensor x = random_tensor(s.x, seed++);
      if (op == "ReduceL1" || op == "ReduceL2" || op == "ReduceSumSquare") {
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] += 0.25f;  // away from 0 for the relative check
      }
      c.runtime = {{"x", x}};
      check(c);
    }
  }
  // Two separate runs of reduced axes: the reference kernel, and reported so.
  Case c;
  c.label = "ReduceMean over axes 0 and 2 of 3";
  c.node = make_node("ReduceMean", {"x"});
  c.node.attributes["axes"] = Attribute::make_ints({0, 2});
  c.runtime = {{"x", random_tensor({3, 4, 5}, 99)}};
  c.expect_native = false;
  check(c);
}

TEST(NativeKernelsTest, ArgMaxAndArgMin) {
  uint32_t seed = 200;
  for (const char* op : {"ArgMax", "ArgMin"}) {
    for (int64_t axis : {0, 1, -1}) {
      for (int64_t last : {0, 1}) {
        Case c;
        c.label = std::string(op) + " axis " + std::to_string(axis) + " last " + std::to_string(last);
        c.node = make_node(op, {"x"});
        c.node.attributes["axis"] = Attribute::make_int(axis);
        c.node.attributes["select_last_index"] = Attribute::make_int(last);
        c.node.attributes["keepdims"] = Attribute::make_int(axis == 1 ? 0 : 1);
        Tensor x = random_tensor({4, 7, 5}, seed++);
        for (int64_t i = 0; i < x.numel(); i += 3) x.data<float>()[i] = 0.5f;  // ties: first vs last index
        c.runtime = {{"x", x}};
        check(c);
      }
    }
  }
}

TEST(NativeKernelsTest, ConcatSplitGatherFlatten) {
  Case concat;
  concat.label = "Concat of 1-D signals on the channel axis";
  concat.node = make_node("Concat", {"a", "b", "c"});
  concat.node.attributes["axis"] = Attribute::make_int(1);
  concat.runtime = {{"a", random_tensor({2, 3, 50}, 1)}, {"b", random_tensor({2, 5, 50}, 2)}, {"c", random_tensor({2, 1, 50}, 3)}};
  check(concat);
  Case big;
  big.label = "Concat of two image feature maps (parallel copy)";
  big.node = make_node("Concat", {"a", "b"});
  big.node.attributes["axis"] = Attribute::make_int(-3);
  big.runtime = {{"a", random_tensor({2, 64, 33, 33}, 4)}, {"b", random_tensor({2, 32, 33, 33}, 5)}};
  check(big);
  Case shape;
  shape.label = "Concat of int64 shape pieces";
  shape.node = make_node("Concat", {"a", "b"});
  shape.node.attributes["axis"] = Attribute::make_int(0);
  shape.runtime = {{"a", ints({2}, {1, 3})}, {"b", ints({1}, {-1})}};
  check(shape);

  for (int64_t opset : {11, 13}) {
    Case split;
    split.label = "Split into 2+5+1 on axis 1, opset " + std::to_string(opset);
    split.opset = opset;
    split.node = make_node("Split", {"x"}, {"p", "q", "r"});
    split.node.attributes["axis"] = Attribute::make_int(1);
    if (opset >= 13) {
      split.node.inputs.push_back("split");
      split.constants = {{"split", ints({3}, {2, 5, 1})}};
    } else {
      split.node.attributes["split"] = Attribute::make_ints({2, 5, 1});
    }
    split.runtime = {{"x", random_tensor({3, 8, 6}, 7)}};
    check(split);
  }
  Case equal;
  equal.label = "Split into equal parts on the last axis";
  equal.node = make_node("Split", {"x"}, {"p", "q"});
  equal.node.attributes["axis"] = Attribute::make_int(-1);
  equal.runtime = {{"x", random_tensor({3, 4, 10}, 8)}};
  check(equal);

  Case embed;
  embed.label = "Gather rows of a table with negative indices";
  embed.node = make_node("Gather", {"table", "idx"});
  embed.constants = {{"table", random_tensor({10, 16}, 9)}};
  embed.runtime = {{"idx", ints({2, 3}, {0, 9, -1, 4, 4, -10})}};
  check(embed);
  Case mid;
  mid.label = "Gather on axis 1 with a scalar index (rank drops)";
  mid.node = make_node("Gather", {"x", "idx"});
  mid.node.attributes["axis"] = Attribute::make_int(1);
  mid.runtime = {{"x", random_tensor({3, 5, 4}, 10)}, {"idx", ints({}, {2})}};
  check(mid);
  Case shape_gather;
  shape_gather.label = "Gather of an int64 shape";
  shape_gather.node = make_node("Gather", {"s", "idx"});
  shape_gather.runtime = {{"s", ints({4}, {1, 3, 224, 224})}, {"idx", ints({1}, {2})}};
  check(shape_gather);

  for (int64_t axis : {0, 1, 2, -1}) {
    Case f;
    f.label = "Flatten axis " + std::to_string(axis);
    f.node = make_node("Flatten", {"x"});
    f.node.attributes["axis"] = Attribute::make_int(axis);
    f.runtime = {{"x", random_tensor({2, 3, 4, 5}, 11)}};
    check(f);
  }
}

TEST(NativeKernelsTest, StandaloneBatchNormInEveryRank) {
  uint32_t seed = 300;
  for (const Dims& x : std::vector<Dims>{{4, 6}, {2, 6, 40}, {2, 6, 9, 7}, {1, 6, 3, 4, 5}}) {
    Case c;
    c.label = "BatchNormalization x" + dims_to_string(x);
    c.node = make_node("BatchNormalization", {"x", "s", "b", "m", "v"});
    c.node.attributes["epsilon"] = Attribute::make_float(1e-3f);
    Tensor var = random_tensor({6}, seed++);
    for (int64_t i = 0; i < 6; ++i) var.data<float>()[i] = std::fabs(var.data<float>()[i]) + 0.1f;
    c.constants = {{"s", random_tensor({6}, seed++)}, {"b", random_tensor({6}, seed++)},
                   {"m", random_tensor({6}, seed++)}, {"v", var}};
    c.runtime = {{"x", random_tensor(x, seed++)}};
    check(c);
  }
}

// After a convolution the BatchNorm reads oneDNN's layout of the conv output (blocked 2-D,
// channels-last 1-D on AVX-512; blocked 1-D too under ONEDNN_MAX_CPU_ISA=AVX2): both native,
// both equal to the reference. 20 channels leave padding in the last 8- or 16-channel block.
// Long enough ({1, 8, 2100}) for the team to split the rows; the BatchNorm writes over the
// Relu's output it reads last, or (C=20, where the Relu's output is also a graph output) into a
// buffer of its own.
TEST(NativeKernelsTest, BatchNormAfterAConvInItsLayout) {
  for (const Dims& x : std::vector<Dims>{{1, 8, 40}, {1, 8, 2100}, {2, 8, 9, 9}})
  for (int64_t C : {16, 20}) {
    Graph g;
    g.opset_imports[""] = 13;
    g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims(x)});
    Dims w = {C, 8};
    for (size_t d = 2; d < x.size(); ++d) w.push_back(3);
    g.initializers["w"] = random_tensor(w, 800);
    Node& conv = g.add_node("Conv", {"x", "w"}, {"c"}, "conv");
    conv.attributes["pads"] = Attribute::make_ints(std::vector<int64_t>(2 * (x.size() - 2), 1));
    g.add_node("Relu", {"c"}, {"r"}, "relu");
    Tensor var = random_tensor({C}, 801);
    for (int64_t i = 0; i < C; ++i) var.data<float>()[i] = std::fabs(var.data<float>()[i]) + 0.1f;
    g.initializers["s"] = random_tensor({C}, 802);
    g.initializers["b"] = random_tensor({C}, 803);
    g.initializers["m"] = random_tensor({C}, 804);
    g.initializers["v"] = var;
    g.add_node("BatchNormalization", {"r", "s", "b", "m", "v"}, {"y"}, "bn");
    g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
    if (C == 20) g.outputs.push_back({"r", DType::kFloat32, Shape::unknown_rank()});
    std::vector<Value> feeds = {Value(random_tensor(x, 805))};
    auto cpu = make_cpu_device(2)->compile(g);
    auto ref = make_ref_device()->compile(g);
    ASSERT_TRUE(cpu.ok() && ref.ok());
    auto a = (*cpu)->run(feeds);
    auto b = (*ref)->run(feeds);
    ASSERT_TRUE(a.ok() && b.ok());
    for (size_t i = 0; i < g.outputs.size(); ++i) {
      expect_close((*a)[i].tensor, (*b)[i].tensor,
                   "conv -> relu -> bn x" + dims_to_string(x) + " C=" + std::to_string(C) + " output " + g.outputs[i].name);
    }
    for (const auto& [name, native] : dynamic_cast<cpu::CpuProgram*>(cpu->get())->native_by_node()) {
      EXPECT_TRUE(native) << name << " x" << dims_to_string(x);
    }
  }
}

// RegNet-Y's squeeze-excite on an AVX-512 host: its grouped conv (8 channels per group) runs
// in 8-channel blocks, for which oneDNN's binary has only its reference kernel there; the
// per-channel Mul/Add/Sub/Div must stay native (our loop over the blocked layout).
TEST(NativeKernelsTest, PerChannelBinaryOnAnEightChannelBlockedConvOutput) {
  for (const char* op : {"Mul", "Add", "Sub", "Div"}) {
   for (int64_t per_group : {8, 4}) {  // nChw8c and (oneDNN's choice for 4 per group) nChw4c
    const int64_t groups = per_group == 8 ? 5 : 11, C = groups * per_group;
    Graph g;
    g.opset_imports[""] = 13;
    g.opset_imports["pyflame_rt"] = 1;
    g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, C, 10, 10})});
    g.initializers["w"] = random_tensor({C, per_group, 3, 3}, 900);
    Node& conv = g.add_node("FusedConv", {"x", "w"}, {"c"}, "conv");
    conv.domain = "pyflame_rt";
    conv.attributes["group"] = Attribute::make_int(groups);
    conv.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
    conv.attributes["activation"] = Attribute::make_string("Relu");
    conv.attributes["pyflame_rt_src_layout"] = Attribute::make_string("blocked");
    conv.attributes["pyflame_rt_dst_layout"] = Attribute::make_string("blocked");
    Tensor scale = random_tensor({1, C, 1, 1}, 901);
    for (int64_t i = 0; i < C; ++i) scale.data<float>()[i] += 2.f;  // away from 0 for Div
    g.initializers["s"] = scale;
    g.add_node(op, {"c", "s"}, {"y"}, op);
    g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
    std::vector<Value> feeds = {Value(random_tensor({1, C, 10, 10}, 902))};
    auto cpu = make_cpu_device(2)->compile(g);
    auto ref = make_ref_device()->compile(g);
    ASSERT_TRUE(cpu.ok() && ref.ok());
    auto a = (*cpu)->run(feeds);
    auto b = (*ref)->run(feeds);
    ASSERT_TRUE(a.ok() && b.ok());
    expect_close((*a)[0].tensor, (*b)[0].tensor, std::string("grouped conv -> ") + op);
    for (const auto& [name, native] : dynamic_cast<cpu::CpuProgram*>(cpu->get())->native_by_node()) {
      EXPECT_TRUE(native) << name << " (" << op << ")";
    }
   }
  }
}

TEST(NativeKernelsTest, SoftmaxAndLogSoftmaxOnAnyAxis) {
  uint32_t seed = 400;
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    for (int64_t opset : {11, 13}) {
      for (int64_t axis : {0, 1, 2, -1}) {
        Case c;
        c.label = std::string(op) + " opset " + std::to_string(opset) + " axis " + std::to_string(axis);
        c.opset = opset;
        c.node = make_node(op, {"x"});
        c.node.attributes["axis"] = Attribute::make_int(axis);
        c.runtime = {{"x", random_tensor({3, 5, 7}, seed++)}};
        check(c);
      }
    }
    // The last axis past 4,096 elements: oneDNN's primitive (below: our small loop).
    Case large;
    large.label = std::string(op) + " last axis of [8, 1000]";
    large.node = make_node(op, {"x"});
    large.runtime = {{"x", random_tensor({8, 1000}, seed++)}};
    check(large);
    // A middle axis with 600 columns after it: more than one 256-column pass of the loop.
    Case wide;
    wide.label = std::string(op) + " axis 1 of [2, 9, 600]";
    wide.node = make_node(op, {"x"});
    wide.node.attributes["axis"] = Attribute::make_int(1);
    wide.runtime = {{"x", random_tensor({2, 9, 600}, seed++)}};
    check(wide);
  }
}

TEST(NativeKernelsTest, ResizeModesAndCoordinateTransforms) {
  struct R { std::string mode, coord, nearest; Dims x; std::vector<float> scales; Dims sizes; };
  const std::vector<R> rs = {
      {"linear", "half_pixel", "", {1, 3, 9, 11}, {1, 1, 2, 2}, {}},            // segmentation upsampling
      {"linear", "pytorch_half_pixel", "", {2, 4, 7, 5}, {}, {2, 4, 28, 1}},    // to a given size, width 1
      {"linear", "align_corners", "", {1, 2, 6, 6}, {}, {1, 2, 13, 17}},
      {"linear", "asymmetric", "", {1, 2, 8, 8}, {1, 1, 0.5f, 0.75f}, {}},    // downsampling
      {"nearest", "asymmetric", "floor", {1, 3, 5, 6}, {1, 1, 2, 2}, {}},       // torch's nearest export
      {"nearest", "half_pixel", "round_prefer_floor", {2, 2, 7, 9}, {1, 1, 1.5f, 2.5f}, {}},
      {"nearest", "align_corners", "round_prefer_ceil", {1, 1, 4, 4}, {}, {1, 1, 7, 3}},
      {"cubic", "half_pixel", "", {1, 2, 6, 7}, {1, 1, 2, 2}, {}},
      {"linear", "half_pixel", "", {2, 3, 20}, {1, 1, 3}, {}},                 // 1-D signal
      {"linear", "half_pixel", "", {1, 64, 33, 33}, {1, 1, 8, 8}, {}},          // large: planes on the team
  };
  uint32_t seed = 500;
  for (const auto& r : rs) {
    Case c;
    c.label = "Resize " + r.mode + " " + r.coord + " x" + dims_to_string(r.x);
    c.node = make_node("Resize", {"x", "", r.scales.empty() ? "" : "scales", r.sizes.empty() ? "" : "sizes"});
    c.node.attributes["mode"] = Attribute::make_string(r.mode);
    c.node.attributes["coordinate_transformation_mode"] = Attribute::make_string(r.coord);
    if (!r.nearest.empty()) c.node.attributes["nearest_mode"] = Attribute::make_string(r.nearest);
    if (!r.scales.empty()) c.constants.push_back({"scales", floats({static_cast<int64_t>(r.scales.size())}, r.scales)});
    if (!r.sizes.empty()) c.constants.push_back({"sizes", ints({static_cast<int64_t>(r.sizes.size())}, r.sizes)});
    c.runtime = {{"x", random_tensor(r.x, seed++)}};
    check(c);
  }
}

// Cubic weights that cancel (a coefficient far outside [-3, 0]) lose the float kernel's
// precision: such a Resize runs on the double reference kernel, and says so; the usual
// coefficients, with and without exclude_outside, stay native (kernel_run stop 23: a = 1e30).
TEST(NativeKernelsTest, CubicResizeWithCancellingWeightsRunsOnTheReference) {
  struct R { float a; bool exclude_outside; bool native; };
  const std::vector<R> rs = {{-0.5f, false, true}, {-0.75f, true, true}, {-3.f, false, true},
                             {1e30f, false, false}, {-1e4f, true, false}};
  uint32_t seed = 700;
  for (const auto& r : rs) {
    Case c;
    c.label = "Resize cubic a=" + std::to_string(r.a) + (r.exclude_outside ? " exclude_outside" : "");
    c.node = make_node("Resize", {"x", "", "scales"});
    c.node.attributes["mode"] = Attribute::make_string("cubic");
    c.node.attributes["cubic_coeff_a"] = Attribute::make_float(r.a);
    c.node.attributes["exclude_outside"] = Attribute::make_int(r.exclude_outside ? 1 : 0);
    c.constants.push_back({"scales", floats({4}, {1, 1, 1.5f, 2.25f})});
    c.runtime = {{"x", random_tensor({1, 2, 5, 6}, seed++)}};
    c.opset = 17;
    c.expect_native = r.native;
    check(c);
  }
}

// Source positions in float, as ONNX Runtime computes them: torchvision's detectors upsample
// their input 320 -> 800 (linear, half_pixel), and at a position near 300 the float's rounding
// moves a weight by ~1.5e-5. Neighbours alternating +-16 make that 5e-4 in the output, far
// beyond the 1e-5 tolerance here: positions taken in double (as before) fail. Both devices.
TEST(NativeKernelsTest, ResizeSourcePositionsAreFloatAsOnnxRuntime) {
  const int64_t in = 320, out = 800;
  std::vector<float> x(static_cast<size_t>(in));
  for (int64_t i = 0; i < in; ++i) x[static_cast<size_t>(i)] = (i % 2 ? 16.f : -16.f) + 0.01f * static_cast<float>(i);
  // ONNX Runtime's arithmetic: position (o + 0.5f) / scale - 0.5f in float, clamped to
  // [0, in - 1], weights from its distance to the lower neighbour.
  const float scale = static_cast<float>(out) / static_cast<float>(in);
  std::vector<double> expected;
  double moved = 0;  // the largest output change between float and double positions
  for (int64_t o = 0; o < out; ++o) {
    float pos = (static_cast<float>(o) + 0.5f) / scale - 0.5f;
    pos = std::min(std::max(pos, 0.f), static_cast<float>(in - 1));
    const int64_t lo = static_cast<int64_t>(pos), hi = std::min(lo + 1, in - 1);
    const double w = static_cast<double>(pos) - static_cast<double>(lo);
    expected.push_back(x[static_cast<size_t>(lo)] * (1 - w) + x[static_cast<size_t>(hi)] * w);
    double exact = std::min(std::max((static_cast<double>(o) + 0.5) / 2.5 - 0.5, 0.0), static_cast<double>(in - 1));
    double we = exact - static_cast<double>(static_cast<int64_t>(exact));
    moved = std::max(moved, std::fabs(x[static_cast<size_t>(lo)] * (1 - we) + x[static_cast<size_t>(hi)] * we -
                                      expected.back()));
  }
  ASSERT_GT(moved, 1e-4);  // the case tells float from double positions
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 1, 1, in})});
  g.initializers["sizes"] = ints({4}, {1, 1, 1, out});
  Node n = make_node("Resize", {"x", "", "", "sizes"});
  n.attributes["mode"] = Attribute::make_string("linear");
  n.attributes["coordinate_transformation_mode"] = Attribute::make_string("half_pixel");
  g.nodes.push_back(n);
  g.outputs.push_back({"y", DType::kUndefined, Shape::unknown_rank()});
  std::vector<Value> feeds{Value(floats({1, 1, 1, in}, x))};
  for (bool native : {true, false}) {
    auto exe = native ? make_cpu_device(1)->compile(g) : make_ref_device()->compile(g);
    ASSERT_TRUE(exe.ok()) << exe.status().to_string();
    auto y = (*exe)->run(feeds);
    ASSERT_TRUE(y.ok()) << y.status().to_string();
    const Tensor& t = (*y)[0].tensor;
    ASSERT_EQ(t.numel(), out);
    double err = 0;
    for (int64_t o = 0; o < out; ++o) err = std::max(err, std::fabs(t.data<float>()[o] - expected[static_cast<size_t>(o)]));
    EXPECT_LT(err, 1e-5) << (native ? "native" : "reference") << " kernel";
  }
}

// Softmax outputs below FLT_MIN are denormals, as std::exp and ONNX Runtime give them, not 0
// (oneDNN's exp flushes them): `score > 0` with a zero threshold must keep the same candidates
// (SSD300 lost 7 of 8732). Rows along the last axis and along a middle axis (strided).
TEST(NativeKernelsTest, SoftmaxKeepsDenormalOutputs) {
  const std::vector<float> row = {0.f, -90.f, -100.f, -3.f, -200.f};  // exp(-90) = 8.2e-40, exp(-200) = 0
  for (bool middle : {false, true}) {
    Dims dims = middle ? Dims{1, 5, 2} : Dims{2, 5};
    std::vector<float> x(10);
    for (int64_t k = 0; k < 10; ++k) {
      int64_t j = middle ? k / 2 : k % 5, r = middle ? k % 2 : k / 5;
      x[static_cast<size_t>(k)] = row[static_cast<size_t>(j)] + 0.5f * static_cast<float>(r);  // same shape, shifted
    }
    Graph g;
    g.opset_imports[""] = 13;
    g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims(dims)});
    Node n = make_node("Softmax", {"x"});
    n.attributes["axis"] = Attribute::make_int(1);
    g.nodes.push_back(n);
    g.outputs.push_back({"y", DType::kUndefined, Shape::unknown_rank()});
    auto exe = make_cpu_device(1)->compile(g);
    ASSERT_TRUE(exe.ok()) << exe.status().to_string();
    auto y = (*exe)->run({Value(floats(dims, x))});
    ASSERT_TRUE(y.ok()) << y.status().to_string();
    const float* out = (*y)[0].tensor.data<float>();
    double sum = 0;
    for (float v : row) sum += std::exp(static_cast<double>(v));
    for (int64_t k = 0; k < 10; ++k) {
      int64_t j = middle ? k / 2 : k % 5;
      const float want = static_cast<float>(std::exp(static_cast<double>(row[static_cast<size_t>(j)])) / sum);
      EXPECT_NEAR(out[k], want, std::max(2e-45, 1e-6 * want)) << (middle ? "middle axis" : "last axis") << " element " << k;
    }
    EXPECT_GT(out[middle ? 2 : 1], 0.f) << "exp(-90) / sum is a denormal, not 0";
    EXPECT_EQ(out[middle ? 8 : 4], 0.f) << "exp(-200) underflows float entirely";
    auto* program = dynamic_cast<cpu::CpuProgram*>(exe->get());
    ASSERT_NE(program, nullptr);
    EXPECT_TRUE(program->native_by_node()[0].second) << "the native Softmax ran";
  }
}

// Where only matrix products read a Softmax (attention's softmax(QK^T) V), its denormal outputs
// stay the zeros oneDNN made: a product with a denormal operand costs ~100x (Swin-T's masked
// windows). softmax [1000, 5] times the identity shows them: 0 there, the denormal when another
// reader (a Greater: `score > 0`) could see it. (1000 rows: past the small tensors our own loop
// takes, which computes the denormals exactly.)
TEST(NativeKernelsTest, SoftmaxReadOnlyByProductsLeavesDenormalsFlushed) {
  const std::vector<float> row = {0.f, -90.f, -100.f, -3.f, -200.f};  // exp(-90) = 8.2e-40
  const int64_t rows = 1000;
  std::vector<float> x, eye(25, 0.f);
  for (int r = 0; r < rows; ++r) x.insert(x.end(), row.begin(), row.end());
  for (int i = 0; i < 5; ++i) eye[static_cast<size_t>(i * 6)] = 1.f;
  for (bool also_compared : {false, true}) {
    Graph g;
    g.opset_imports[""] = 13;
    g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({rows, 5})});
    g.initializers["eye"] = floats({5, 5}, eye);
    g.initializers["zero"] = floats({1}, {0.f});
    Node sm = make_node("Softmax", {"x"});
    sm.outputs = {"p"};
    g.nodes.push_back(sm);
    g.add_node("MatMul", {"p", "eye"}, {"y"}, "product");
    g.outputs.push_back({"y", DType::kUndefined, Shape::unknown_rank()});
    if (also_compared) {
      g.add_node("Greater", {"p", "zero"}, {"kept"}, "threshold");
      g.outputs.push_back({"kept", DType::kUndefined, Shape::unknown_rank()});
    }
    auto exe = make_cpu_device(1)->compile(g);
    ASSERT_TRUE(exe.ok()) << exe.status().to_string();
    auto y = (*exe)->run({Value(floats({rows, 5}, x))});
    ASSERT_TRUE(y.ok()) << y.status().to_string();
    const float* out = (*y)[0].tensor.data<float>();
    if (also_compared) {
      EXPECT_GT(out[1], 0.f) << "restored: the Greater sees the denormal";
      EXPECT_TRUE((*y)[1].tensor.data<bool>()[1]) << "exp(-90) / sum > 0";
    } else {
      EXPECT_EQ(out[1], 0.f) << "only the MatMul reads it: left flushed";
    }
    EXPECT_NEAR(out[0], 1.0 / (1.0 + std::exp(-3.0)), 1e-6);
  }
}

TEST(NativeKernelsTest, UnaryMath) {
  uint32_t seed = 700;
  for (const char* op : {"Sqrt", "Abs", "Exp", "Log", "Neg"}) {
    for (const Dims& d : std::vector<Dims>{{1, 512}, {2, 6, 40}, {2, 3, 5, 7}}) {
      Case c;
      c.label = std::string(op) + " x" + dims_to_string(d);
      c.node = make_node(op, {"x"});
      Tensor x = random_tensor(d, seed++);
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::fabs(x.data<float>()[i]) + 0.05f;  // Sqrt/Log domain
      c.runtime = {{"x", x}};
      check(c);
    }
  }
  // Rank 7 (the NLL-loss conformance cases): a small tensor on our loop (small_eltwise.h, any
  // rank), a large one beyond oneDNN's plain tags here, the reference.
  Case c;
  c.label = "Neg of a small rank-7 tensor";
  c.node = make_node("Neg", {"x"});
  c.runtime = {{"x", random_tensor({2, 1, 2, 1, 2, 1, 3}, 750)}};
  check(c);
  c.label = "Neg of a large rank-7 tensor";
  c.runtime = {{"x", random_tensor({2, 2, 2, 2, 2, 2, 80}, 751)}};
  c.expect_native = false;
  check(c);
}

TEST(NativeKernelsTest, ErfInEveryRank) {
  uint32_t seed = 800;
  for (const Dims& d : std::vector<Dims>{{7}, {1, 512}, {2, 6, 40}, {2, 3, 5, 7}, {4, 128, 200}}) {
    Case c;
    c.label = "Erf x" + dims_to_string(d);
    c.node = make_node("Erf", {"x"});
    Tensor x = random_tensor(d, seed++);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] *= 3.0f;  // both sides of the 0.5 switch
    c.runtime = {{"x", x}};
    check(c);
  }
}

TEST(NativeKernelsTest, CastBetweenNumericTypes) {
  // Fractions, negatives and values past int8's range: truncation and wrap as the reference does.
  Tensor x = random_tensor({3, 5, 7}, 820);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] *= 300.0f;
  Tensor big = random_tensor({2, 300, 300}, 821);  // several chunks: split over the team
  Tensor i64 = ints({2, 3}, {-7, 0, 5, 1 << 20, -(1 << 30), 3});
  struct To { const char* name; DType dtype; };
  for (const To& to : {To{"int64", DType::kInt64}, To{"int32", DType::kInt32}, To{"int8", DType::kInt8},
                       To{"uint8", DType::kUInt8}, To{"float16", DType::kFloat16}, To{"bfloat16", DType::kBFloat16},
                       To{"bool", DType::kBool}, To{"double", DType::kFloat64}, To{"float", DType::kFloat32}}) {
    for (const auto& [label, input] : std::vector<std::pair<std::string, Tensor>>{{"f32", x}, {"big f32", big}, {"i64", i64}}) {
      Case c;
      c.label = "Cast " + label + " to " + to.name;
      c.node = make_node("Cast", {"x"});
      c.node.attributes["to"] = Attribute::make_int(static_cast<int64_t>(to.dtype));  // DType codes are ONNX's
      c.runtime = {{"x", input}};
      check(c);
    }
  }
  Case like;
  like.label = "CastLike f32 to int32";
  like.node = make_node("CastLike", {"x", "t"});
  like.runtime = {{"x", x}, {"t", Tensor::from_vector<int32_t>({1}, {0})}};
  like.opset = 15;
  check(like);
  Case str;
  str.label = "Cast to string (the reference)";
  str.node = make_node("Cast", {"x"});
  str.node.attributes["to"] = Attribute::make_int(8);  // TensorProto.STRING
  str.runtime = {{"x", i64}};
  str.expect_native = false;
  check(str);
}

TEST(NativeKernelsTest, InstanceNormInEveryRank) {
  uint32_t seed = 840;
  for (const Dims& d : std::vector<Dims>{{2, 4, 50}, {1, 8, 9, 11}, {2, 3, 4, 5, 6}, {1, 32, 64, 64}}) {
    Case c;
    c.label = "InstanceNormalization x" + dims_to_string(d);
    c.node = make_node("InstanceNormalization", {"x", "s", "b"});
    c.node.attributes["epsilon"] = Attribute::make_float(1e-3f);
    Tensor x = random_tensor(d, seed++);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = x.data<float>()[i] * 4.0f + 10.0f;  // a large mean
    c.runtime = {{"x", x}};
    c.constants = {{"s", random_tensor({d[1]}, seed++)}, {"b", random_tensor({d[1]}, seed++)}};
    check(c);
  }
}

TEST(NativeKernelsTest, BroadcastBinaryWithMergedDims) {
  // Plain operands whose broadcast pattern merges to fewer dims (Swin's window attention mask).
  uint32_t seed = 860;
  const std::vector<std::pair<Dims, Dims>> shapes = {
      {{1, 64, 3, 7, 7}, {1, 64, 1, 7, 7}}, {{2, 3, 4, 5, 6}, {1, 1, 4, 5, 6}}, {{2, 3, 4, 5, 6}, {2, 1, 1, 5, 1}},
      {{1, 2, 3, 4, 5, 6}, {1, 2, 1, 1, 5, 6}}, {{4, 6, 8}, {1, 6, 8}}};
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const auto& [da, db] : shapes) {
      Case c;
      c.label = std::string(op) + " " + dims_to_string(da) + " with " + dims_to_string(db);
      c.node = make_node(op, {"a", "b"});
      Tensor b = random_tensor(db, seed++);
      for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] += b.data<float>()[i] >= 0 ? 0.5f : -0.5f;  // Div
      c.runtime = {{"a", random_tensor(da, seed++)}, {"b", b}};
      check(c);
    }
  }
}

TEST(NativeKernelsTest, SliceWithAnyStep) {
  struct S { std::string label; Dims dims; std::vector<int64_t> starts, ends, axes, steps; };
  const int64_t big = std::numeric_limits<int64_t>::max(), small = std::numeric_limits<int64_t>::min();
  const std::vector<S> cases = {
      {"unit step", {2, 8, 9, 5}, {1, 2}, {7, -1}, {1, 2}, {1, 1}},
      {"PatchMerging 0::2, 1::2", {1, 56, 56, 24}, {0, 1}, {big, big}, {1, 2}, {2, 2}},
      {"reverse", {3, 10}, {-1}, {small}, {1}, {-1}},
      {"step -3 from the middle", {4, 11, 3}, {9, 2}, {0, big}, {1, -3}, {-3, 2}},
      {"1-D step 4", {37}, {1}, {36}, {0}, {4}},
      {"rank 5, inner axis strided", {2, 3, 4, 5, 6}, {0, 1}, {big, 6}, {0, 4}, {1, 2}},
  };
  uint32_t seed = 880;
  for (const S& t : cases) {
    Case c;
    c.label = "Slice " + t.label;
    c.node = make_node("Slice", {"x", "starts", "ends", "axes", "steps"});
    c.runtime = {{"x", random_tensor(t.dims, seed++)}};
    Dims n = {static_cast<int64_t>(t.starts.size())};
    c.constants = {{"starts", ints(n, t.starts)}, {"ends", ints(n, t.ends)}, {"axes", ints(n, t.axes)}, {"steps", ints(n, t.steps)}};
    check(c);
  }
  Case i64;
  i64.label = "Slice of int64 with step 2";
  i64.node = make_node("Slice", {"x", "starts", "ends", "axes", "steps"});
  i64.runtime = {{"x", ints({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})}};
  i64.constants = {{"starts", ints({1}, {0})}, {"ends", ints({1}, {5})}, {"axes", ints({1}, {1})}, {"steps", ints({1}, {2})}};
  check(i64);
  Case empty;
  empty.label = "Slice to an empty result (the reference)";
  empty.node = make_node("Slice", {"x", "starts", "ends", "axes", "steps"});
  empty.runtime = {{"x", random_tensor({4, 4}, seed++)}};
  empty.constants = {{"starts", ints({1}, {3})}, {"ends", ints({1}, {1})}, {"axes", ints({1}, {0})}, {"steps", ints({1}, {1})}};
  empty.expect_native = false;
  check(empty);
}

TEST(NativeKernelsTest, ReshapeAsAView) {
  const std::vector<std::pair<std::vector<int64_t>, int64_t>> shapes = {{{0, -1}, 0}, {{4, 0, 5}, 0}, {{-1}, 0}, {{2, 10, 3}, 1}};
  for (const auto& [shape, allow_zero] : shapes) {
    Case c;
    c.label = "Reshape [4,3,5] to " + dims_to_string(shape);
    c.node = make_node("Reshape", {"x", "shape"});
    c.node.attributes["allowzero"] = Attribute::make_int(allow_zero);
    c.runtime = {{"x", random_tensor({4, 3, 5}, 900)}};
    c.constants = {{"shape", ints({static_cast<int64_t>(shape.size())}, shape)}};
    c.opset = 14;
    check(c);
  }
}

TEST(NativeKernelsTest, SqueezeAndUnsqueezeAsViews) {
  struct S { std::string op; Dims x; std::vector<int64_t> axes; int64_t opset; };
  const std::vector<S> cases = {
      {"Squeeze", {1, 3, 1, 5}, {0, 2}, 13},     // axes as an input
      {"Squeeze", {1, 3, 1, 5}, {-2}, 13},       // negative axis
      {"Squeeze", {1, 3, 1, 5}, {}, 13},         // no axes: every dim of size 1
      {"Squeeze", {4, 1, 6}, {1}, 11},           // axes as an attribute
      {"Unsqueeze", {3, 5}, {0, 3}, 13},         // axes of the output
      {"Unsqueeze", {3, 5}, {-1, 1}, 13},
      {"Unsqueeze", {}, {0}, 13},                // a scalar to [1]
      {"Unsqueeze", {2, 7}, {2}, 11},            // attribute
  };
  uint32_t seed = 910;
  for (const S& t : cases) {
    Case c;
    c.label = t.op + " " + dims_to_string(t.x) + " axes " + dims_to_string(t.axes) + " opset " + std::to_string(t.opset);
    c.node = make_node(t.op, {"x"});
    c.opset = t.opset;
    if (t.opset >= 13 && !t.axes.empty()) {
      c.node.inputs.push_back("axes");
      c.constants = {{"axes", ints({static_cast<int64_t>(t.axes.size())}, t.axes)}};
    } else if (!t.axes.empty()) {
      c.node.attributes["axes"] = Attribute::make_ints(t.axes);
    }
    c.runtime = {{"x", random_tensor(t.x, seed++)}};
    check(c);
  }
  Case i64;
  i64.label = "Unsqueeze of int64 shape values";
  i64.node = make_node("Unsqueeze", {"x", "axes"});
  i64.runtime = {{"x", ints({3}, {7, 8, 9})}};
  i64.constants = {{"axes", ints({1}, {0})}};
  check(i64);

  // A bad axis goes to the reference kernel, whose error the CPU device returns unchanged.
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 3})});
  g.initializers["axes"] = ints({1}, {1});
  g.nodes.push_back(make_node("Squeeze", {"x", "axes"}));
  g.outputs.push_back({"y", DType::kUndefined, Shape::unknown_rank()});
  auto cpu = make_cpu_device(1)->compile(g);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  auto r = (*cpu)->run({Value(random_tensor({1, 3}, 920))});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find("cannot squeeze axis 1 of shape [1,3]: its size is 3, not 1"), std::string::npos)
      << r.status().to_string();
}

TEST(NativeKernelsTest, ExpandTileWherePad) {
  Case expand;
  expand.label = "Expand [3,1] to [2,3,4]";
  expand.node = make_node("Expand", {"x", "shape"});
  expand.runtime = {{"x", random_tensor({3, 1}, 600)}};
  expand.constants = {{"shape", ints({3}, {2, 1, 4})}};
  check(expand);
  Case rows;
  rows.label = "Expand a row [1,5] to [4,5]";
  rows.node = make_node("Expand", {"x", "shape"});
  rows.runtime = {{"x", random_tensor({1, 5}, 601)}};
  rows.constants = {{"shape", ints({2}, {4, 1})}};
  check(rows);

  Case tile;
  tile.label = "Tile [2,3,4] by [2,1,3]";
  tile.node = make_node("Tile", {"x", "reps"});
  tile.runtime = {{"x", random_tensor({2, 3, 4}, 602)}};
  tile.constants = {{"reps", ints({3}, {2, 1, 3})}};
  check(tile);

  Case where;
  where.label = "Where with a broadcast [1,1,4,4] mask (attention)";
  where.node = make_node("Where", {"c", "a", "b"});
  Tensor mask(DType::kBool, {1, 1, 4, 4});
  for (int64_t i = 0; i < 16; ++i) mask.data<bool>()[i] = (i % 5) < 2;
  where.runtime = {{"c", mask}, {"a", random_tensor({2, 3, 4, 4}, 603)}, {"b", floats({}, {-1e4f})}};
  check(where);
  Case where_int;
  where_int.label = "Where on int64 with a per-row condition";
  where_int.node = make_node("Where", {"c", "a", "b"});
  Tensor rows_c(DType::kBool, {3, 1});
  rows_c.data<bool>()[1] = true;
  where_int.runtime = {{"c", rows_c}, {"a", ints({3, 2}, {1, 2, 3, 4, 5, 6})}, {"b", ints({2}, {-7, -8})}};
  check(where_int);

  for (int64_t opset : {2, 13}) {
    Case pad;
    pad.label = "Pad constant, opset " + std::to_string(opset);
    pad.opset = opset;
    pad.node = make_node("Pad", {"x"});
    std::vector<int64_t> pads = {0, 1, 2, 0, 0, 3, 1, 1};  // [N,C,H,W]: C +1/+3, H +2/+1, W +0/+1
    if (opset >= 11) {
      pad.node.inputs.push_back("pads");
      pad.node.inputs.push_back("value");
      pad.constants = {{"pads", ints({8}, pads)}, {"value", floats({}, {0.5f})}};
    } else {
      pad.node.attributes["pads"] = Attribute::make_ints(pads);
    }
    pad.runtime = {{"x", random_tensor({2, 3, 4, 5}, 604)}};
    check(pad);
  }
  Case pad1d;
  pad1d.label = "Pad a 1-D signal on both ends";
  pad1d.node = make_node("Pad", {"x", "pads"});
  pad1d.constants = {{"pads", ints({6}, {0, 0, 3, 0, 0, 2})}};
  pad1d.runtime = {{"x", random_tensor({2, 4, 30}, 605)}};
  check(pad1d);
  Case reflect;
  reflect.label = "Pad reflect: the reference kernel";
  reflect.node = make_node("Pad", {"x", "pads"});
  reflect.node.attributes["mode"] = Attribute::make_string("reflect");
  reflect.constants = {{"pads", ints({4}, {0, 1, 0, 2})}};
  reflect.runtime = {{"x", random_tensor({3, 5}, 606)}};
  reflect.expect_native = false;
  check(reflect);
}

}  // namespace
}  // namespace pyflame_rt
