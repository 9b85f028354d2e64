// Every native CPU op against the reference kernels on the same node, over odd shapes and
// attribute combinations, by normalised error (the CPU device must agree with the oracle).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include <dnnl.hpp>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/cpu/gemm_conv.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/recurrent_loop.h"
#include "devices/cpu/small_eltwise.h"
#include "devices/cpu/winograd_conv.h"
#include "devices/ref/ref_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// Builds a one-node graph: `runtime` inputs are graph inputs, `constants` become initializers.
struct OpCase {
  std::string name;
  Node node;
  std::vector<std::pair<std::string, Tensor>> runtime, constants;
  bool native = true;  // false: a case the native op hands to the reference kernel at run time
};

double max_normalised_error(const Tensor& a, const Tensor& b) {
  double scale = 1e-6, err = 0;
  for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(b.data<float>()[i])));
  for (int64_t i = 0; i < b.numel(); ++i) err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return err / scale;
}

void check(const OpCase& c) {
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports["pyflame_rt"] = 1;
  std::vector<Value> feeds;
  for (const auto& r : c.runtime) {
    g.inputs.push_back({r.first, DType::kFloat32, Shape::from_dims(r.second.dims())});
    feeds.emplace_back(r.second);
  }
  for (const auto& k : c.constants) g.initializers[k.first] = k.second;
  g.nodes.push_back(c.node);
  for (const auto& out : c.node.outputs) g.outputs.push_back({out, DType::kFloat32, Shape::unknown_rank()});
  auto cpu = make_cpu_device(2)->compile(g);
  auto ref = make_ref_device()->compile(g);
  ASSERT_TRUE(cpu.ok() && ref.ok()) << c.name;
  auto a = (*cpu)->run(feeds);
  auto b = (*ref)->run(feeds);
  ASSERT_TRUE(a.ok()) << c.name << ": " << a.status().to_string();
  ASSERT_TRUE(b.ok()) << c.name << ": " << b.status().to_string();
  for (size_t i = 0; i < c.node.outputs.size(); ++i) {  // every output, not only the first
    const Tensor& ta = (*a)[i].tensor;
    const Tensor& tb = (*b)[i].tensor;
    ASSERT_EQ(ta.dims(), tb.dims()) << c.name << " output " << i;
    EXPECT_LT(max_normalised_error(ta, tb), 1e-5) << c.name << " output " << i;
  }
  // The point is the native kernel: a silent fallback to the reference would pass the above.
  auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
  ASSERT_NE(program, nullptr) << c.name;
  for (const auto& [node_name, native] : program->native_by_node()) {
    EXPECT_EQ(native, c.native) << c.name << ": node '" << node_name << "' ran on the "
                                << (native ? "native" : "reference") << " kernel";
  }
}

// A whole graph on both devices: every output within 1e-5 (normalised) of the reference's.
void expect_graph_matches_ref(const Graph& g, const std::vector<Value>& feeds, const std::string& label) {
  auto cpu = make_cpu_device(2)->compile(g);
  auto ref = make_ref_device()->compile(g);
  ASSERT_TRUE(cpu.ok() && ref.ok()) << label;
  auto a = (*cpu)->run(feeds);
  auto b = (*ref)->run(feeds);
  ASSERT_TRUE(a.ok() && b.ok()) << label << ": " << (a.ok() ? b.status().to_string() : a.status().to_string());
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    ASSERT_EQ((*a)[i].tensor.dims(), (*b)[i].tensor.dims()) << label << " output " << i;
    EXPECT_LT(max_normalised_error((*a)[i].tensor, (*b)[i].tensor), 1e-5) << label << " output " << i;
  }
}

// x [2,4,9,9] -> 3x3 Conv with C output channels -> "c": on AVX2 a blocked (nChw8c) value,
// padded when C is no multiple of 8, for the tests of ops that read a blocked input.
Graph blocked_conv_graph(int64_t C, uint32_t seed) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({2, 4, 9, 9})});
  g.initializers["w"] = random_tensor({C, 4, 3, 3}, seed);
  Node& conv = g.add_node("Conv", {"x", "w"}, {"c"}, "conv");
  conv.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  return g;
}

Node node(const std::string& op, std::vector<std::string> in, const std::string& domain = "") {
  Node n;
  n.op_type = op;
  n.domain = domain;
  n.name = op;
  n.inputs = std::move(in);
  n.outputs = {"y"};
  return n;
}

TEST(CpuVsRefTest, Convolutions) {
  struct Conf { Dims x, w; int64_t group; std::vector<int64_t> strides, dil, pads; bool bias; std::string act; };
  std::vector<Conf> confs = {
      {{1, 3, 17, 13}, {8, 3, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, true, ""},
      {{2, 8, 9, 9}, {8, 1, 3, 3}, 8, {2, 2}, {1, 1}, {1, 0, 1, 0}, true, "Relu"},      // depthwise
      {{1, 6, 10, 7}, {4, 3, 3, 1}, 2, {1, 2}, {2, 1}, {2, 0, 2, 0}, false, "Clip"},    // grouped, dilated
      {{1, 5, 11}, {7, 5, 3}, 1, {2}, {1}, {1, 1}, true, "Sigmoid"},                    // 1-D
      {{1, 2, 5, 6, 4}, {3, 2, 3, 3, 3}, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, true, "HardSwish"},  // 3-D
      {{2, 8, 40}, {8, 2, 3}, 4, {1}, {2}, {2, 2}, true, "Relu"},                       // 1-D grouped, dilated
      {{1, 16, 64}, {16, 1, 5}, 16, {2}, {1}, {2, 2}, false, ""},                        // 1-D depthwise
      {{1, 4, 6, 7, 5}, {4, 1, 3, 3, 3}, 4, {1, 2, 1}, {2, 1, 1}, {2, 1, 1, 2, 1, 1}, true, "Relu"},  // 3-D depthwise, dilated
      {{1, 8, 5, 7}, {4, 8, 3, 3}, 1, {1, 1}, {6, 6}, {6, 6, 6, 6}, true, "Relu"},      // dilation past the input: 1x1
      {{1, 8, 5, 9}, {4, 8, 3, 3}, 1, {1, 1}, {6, 4}, {6, 4, 6, 4}, false, ""},         // trimmed on H only
      {{1, 4, 9}, {4, 4, 3}, 1, {1}, {12}, {12, 12}, false, ""},                          // 1-D, trimmed
  };
  uint32_t seed = 1;
  for (const auto& f : confs) {
    OpCase c;
    c.name = "conv x" + dims_to_string(f.x) + " act=" + f.act;
    bool fused = !f.act.empty();
    c.node = node(fused ? "FusedConv" : "Conv", {"x", "w", f.bias ? "b" : ""}, fused ? "pyflame_rt" : "");
    c.node.attributes["group"] = Attribute::make_int(f.group);
    c.node.attributes["strides"] = Attribute::make_ints(f.strides);
    c.node.attributes["dilations"] = Attribute::make_ints(f.dil);
    c.node.attributes["pads"] = Attribute::make_ints(f.pads);
    if (fused) c.node.attributes["activation"] = Attribute::make_string(f.act);
    if (f.act == "Clip") c.node.attributes["activation_params"] = Attribute::make_floats({-0.2f, 0.3f});
    c.runtime = {{"x", random_tensor(f.x, seed++)}};
    c.constants = {{"w", random_tensor(f.w, seed++)}};
    if (f.bias) c.constants.push_back({"b", random_tensor({f.w[0]}, seed++)});
    check(c);
  }
}

// ConvTranspose over ranks, groups, dilations, strides, pads, auto_pad, output_padding and
// output_shape, with and without bias; the first two are Mask R-CNN's and Keypoint R-CNN's
// heads. The last case takes its weights at run time (as the ONNX node tests do).
TEST(CpuVsRefTest, ConvTranspose) {
  struct Conf {
    std::string name;
    Dims x, w;
    int64_t group;
    std::vector<int64_t> strides, dil, pads, out_pad, out_shape;
    std::string auto_pad;
    bool bias, runtime_weights;
  };
  std::vector<Conf> confs = {
      {"mask rcnn 2x2 s2", {3, 256, 14, 14}, {256, 256, 2, 2}, 1, {2, 2}, {1, 1}, {0, 0, 0, 0}, {}, {}, "", true, false},
      {"keypoint rcnn 4x4 s2 p1", {2, 512, 14, 14}, {512, 17, 4, 4}, 1, {2, 2}, {1, 1}, {1, 1, 1, 1}, {}, {}, "", true, false},
      {"1-D", {2, 5, 11}, {5, 7, 3}, 1, {2}, {1}, {1, 0}, {}, {}, "", true, false},
      {"1-D grouped dilated", {1, 8, 9}, {8, 3, 3}, 4, {1}, {2}, {2, 1}, {}, {}, "", false, false},
      {"2-D grouped", {2, 6, 5, 7}, {6, 2, 3, 3}, 3, {2, 1}, {1, 1}, {1, 1, 0, 1}, {}, {}, "", true, false},
      {"2-D dilated strided", {1, 4, 6, 5}, {4, 3, 3, 2}, 1, {3, 2}, {2, 3}, {0, 1, 2, 0}, {}, {}, "", false, false},
      {"output_padding", {1, 3, 4, 5}, {3, 2, 3, 3}, 1, {3, 2}, {1, 1}, {0, 0, 0, 0}, {1, 1}, {}, "", true, false},
      {"output_shape", {1, 3, 3, 3}, {3, 2, 3, 3}, 1, {3, 2}, {1, 1}, {0, 0, 0, 0}, {}, {10, 8}, "", true, false},
      {"output_shape smaller", {1, 3, 5, 4}, {3, 2, 3, 3}, 1, {2, 2}, {1, 1}, {0, 0, 0, 0}, {}, {9, 6}, "", false, false},
      {"SAME_UPPER", {1, 2, 5, 6}, {2, 3, 3, 3}, 1, {2, 2}, {1, 1}, {0, 0, 0, 0}, {}, {}, "SAME_UPPER", true, false},
      {"SAME_LOWER", {1, 2, 5, 6}, {2, 3, 4, 3}, 1, {2, 3}, {1, 1}, {0, 0, 0, 0}, {}, {}, "SAME_LOWER", true, false},
      {"VALID", {1, 2, 4, 4}, {2, 3, 3, 3}, 1, {2, 2}, {1, 1}, {1, 1, 1, 1}, {}, {}, "VALID", true, false},
      {"3-D", {1, 4, 3, 4, 5}, {4, 2, 3, 2, 3}, 2, {2, 1, 2}, {1, 2, 1}, {1, 0, 1, 0, 1, 1}, {1, 0, 1}, {}, "", true, false},
      {"run-time weights", {2, 3, 6, 6}, {3, 4, 3, 3}, 1, {2, 2}, {1, 1}, {1, 1, 1, 1}, {}, {}, "", true, true},
  };
  uint32_t seed = 100;
  for (const auto& f : confs) {
    OpCase c;
    c.name = "ConvTranspose " + f.name;
    c.node = node("ConvTranspose", {"x", "w", f.bias ? "b" : ""});
    c.node.attributes["group"] = Attribute::make_int(f.group);
    c.node.attributes["strides"] = Attribute::make_ints(f.strides);
    c.node.attributes["dilations"] = Attribute::make_ints(f.dil);
    if (f.auto_pad.empty()) c.node.attributes["pads"] = Attribute::make_ints(f.pads);
    else c.node.attributes["auto_pad"] = Attribute::make_string(f.auto_pad);
    if (!f.out_pad.empty()) c.node.attributes["output_padding"] = Attribute::make_ints(f.out_pad);
    if (!f.out_shape.empty()) c.node.attributes["output_shape"] = Attribute::make_ints(f.out_shape);
    c.runtime = {{"x", random_tensor(f.x, seed++)}};
    Tensor w = random_tensor(f.w, seed++);
    if (f.runtime_weights) c.runtime.push_back({"w", w});
    else c.constants.push_back({"w", w});
    if (f.bias) c.constants.push_back({"b", random_tensor({f.w[1] * f.group}, seed++)});
    check(c);
  }
}

// AVX-512's 16-channel blocks forced on a grouped conv with 8 channels per group: oneDNN has
// only its reference kernel for that layout, so the op takes the kernel's own layouts.
TEST(CpuVsRefTest, GroupedConvInForcedBlockedLayout) {
  OpCase c;
  c.name = "grouped conv, 8 channels per group, blocked layouts";
  c.node = node("FusedConv", {"x", "w", "b"}, "pyflame_rt");
  c.node.attributes["group"] = Attribute::make_int(6);
  c.node.attributes["strides"] = Attribute::make_ints({2, 2});
  c.node.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  c.node.attributes["activation"] = Attribute::make_string("Relu");
  c.node.attributes["pyflame_rt_src_layout"] = Attribute::make_string("blocked");
  c.node.attributes["pyflame_rt_dst_layout"] = Attribute::make_string("blocked");
  c.runtime = {{"x", random_tensor({1, 48, 12, 12}, 15)}};
  c.constants = {{"w", random_tensor({48, 8, 3, 3}, 16)}, {"b", random_tensor({48}, 17)}};
  check(c);
}

// A fused SiLU both ways (conv_op.cpp silu_as_post_op): oneDNN's swish post-op and our pass
// over the output (the default), on a 1x1 expansion and a
// depthwise conv (EfficientNet's) and a channel count that pads the blocked layout.
TEST(CpuVsRefTest, ConvWithSiluAsPostOpOrPass) {
  for (const char* form : {"postop", "pass"}) {
    ASSERT_EQ(setenv("PFRT_CONV_SILU", form, 1), 0);
    struct Conf { Dims x, w; int64_t group; std::vector<int64_t> pads; };
    for (const Conf& f : {Conf{{1, 16, 12, 12}, {40, 16, 1, 1}, 1, {0, 0, 0, 0}},
                          Conf{{1, 24, 10, 10}, {24, 1, 3, 3}, 24, {1, 1, 1, 1}}}) {
      OpCase c;
      c.name = std::string("conv + SiLU as ") + form + " x" + dims_to_string(f.x);
      c.node = node("FusedConv", {"x", "w", "b"}, "pyflame_rt");
      c.node.attributes["group"] = Attribute::make_int(f.group);
      c.node.attributes["pads"] = Attribute::make_ints(f.pads);
      c.node.attributes["activation"] = Attribute::make_string("SiLU");
      c.runtime = {{"x", random_tensor(f.x, 21)}};
      c.constants = {{"w", random_tensor(f.w, 22)}, {"b", random_tensor({f.w[0]}, 23)}};
      check(c);
    }
  }
  unsetenv("PFRT_CONV_SILU");
}

TEST(CpuVsRefTest, ResidualFusedConv) {
  OpCase c;
  c.name = "conv + residual + relu";
  c.node = node("FusedConv", {"x", "w", "b", "z"}, "pyflame_rt");
  c.node.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  c.node.attributes["activation"] = Attribute::make_string("Relu");
  c.runtime = {{"x", random_tensor({1, 16, 7, 7}, 11)}, {"z", random_tensor({1, 32, 7, 7}, 12)}};
  c.constants = {{"w", random_tensor({32, 16, 3, 3}, 13)}, {"b", random_tensor({32}, 14)}};
  check(c);
}

// Convolutions with few output pixels on AVX-512 take our panel product (gemm_conv.h): 1x1, 3x3
// stride 2 and 3x3 stride 1 with a residual, ResNet-50's 7x7 stage in small; not with fewer
// 32-channel panels than the device's 2 threads.
TEST(CpuVsRefTest, SmallOutputConvolutionsTakeThePanelProduct) {
  const bool avx512 = cpu::GemmConv::cpu_supported() && dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
  struct Conf { Dims x, w; int64_t stride, pad; bool residual; };
  const std::vector<Conf> confs = {
      {{1, 64, 7, 7}, {64, 64, 1, 1}, 1, 0, true},
      {{1, 32, 14, 14}, {64, 32, 3, 3}, 2, 1, false},
      {{1, 32, 7, 7}, {64, 32, 3, 3}, 1, 1, true},
      {{1, 32, 7, 7}, {32, 32, 3, 3}, 1, 1, false},  // one 32-channel panel for 2 threads: oneDNN's
  };
  uint32_t seed = 500;
  for (const Conf& f : confs) {
    OpCase c;
    c.name = "small-output conv x" + dims_to_string(f.x) + " w" + dims_to_string(f.w);
    c.node = node("FusedConv", {"x", "w", "b", f.residual ? "z" : ""}, "pyflame_rt");
    c.node.attributes["strides"] = Attribute::make_ints({f.stride, f.stride});
    c.node.attributes["pads"] = Attribute::make_ints({f.pad, f.pad, f.pad, f.pad});
    c.node.attributes["activation"] = Attribute::make_string("Relu");
    c.runtime = {{"x", random_tensor(f.x, seed++)}};
    if (f.residual) c.runtime.push_back({"z", random_tensor({1, f.w[0], 7, 7}, seed++)});
    c.constants = {{"w", random_tensor(f.w, seed++)}, {"b", random_tensor({f.w[0]}, seed++)}};
    const uint64_t before = cpu::gemm_conv_runs();
    check(c);
    if (avx512 && f.w[0] >= 64) EXPECT_GT(cpu::gemm_conv_runs(), before) << c.name << ": not on the panel product";
    else EXPECT_EQ(cpu::gemm_conv_runs(), before) << c.name << ": the panel product without AVX-512 or panels";
  }
}

// 3x3 stride-1 convolutions with at most 32 output channels from 28x28 outputs on AVX-512 take
// our F(4x4) Winograd on nChw16c (DenseNet's dense layers; conv_op.cpp's
// own_winograd16_narrow_cout_), where oneDNN's F(2x2) is slower than its direct kernel; wider
// or smaller ones stay on oneDNN's. On AVX2 (ONEDNN_MAX_CPU_ISA=AVX2) every such convolution
// takes the nChw8c variant, as before.
TEST(CpuVsRefTest, NarrowConvolutionsTakeOurWinogradOnAvx512) {
  const bool avx512 = cpu::WinogradConv::cpu_supported(16) && dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
  const bool default_area = std::getenv("PFRT_WINOGRAD16_MIN_AREA") == nullptr &&
                            std::getenv("PFRT_WINOGRAD16_NARROW_COUT") == nullptr && std::getenv("PFRT_NO_WINOGRAD") == nullptr;
  if (!default_area) GTEST_SKIP() << "a PFRT_WINOGRAD16_* or PFRT_NO_WINOGRAD override is set";
  struct Conf { Dims x; int64_t cout; bool relu, narrow; };
  const std::vector<Conf> confs = {
      {{1, 32, 28, 28}, 32, true, true},     // DenseNet's 28x28 layer in small (cin 128 there)
      {{1, 48, 30, 29}, 16, false, true},    // tiles past the edge, no activation
      {{2, 16, 56, 56}, 32, true, true},     // two images at 56x56
      {{1, 32, 28, 28}, 48, true, false},    // wider: oneDNN's
      {{1, 32, 14, 14}, 32, true, false},    // 196 outputs: oneDNN's
  };
  uint32_t seed = 700;
  for (const Conf& f : confs) {
    OpCase c;
    c.name = "3x3 conv x" + dims_to_string(f.x) + " cout " + std::to_string(f.cout);
    c.node = node("FusedConv", {"x", "w", "b"}, "pyflame_rt");
    c.node.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
    if (f.relu) c.node.attributes["activation"] = Attribute::make_string("Relu");
    c.runtime = {{"x", random_tensor(f.x, seed++)}};
    c.constants = {{"w", random_tensor({f.cout, f.x[1], 3, 3}, seed++)}, {"b", random_tensor({f.cout}, seed++)}};
    const uint64_t before16 = cpu::winograd_conv_runs(16), before8 = cpu::winograd_conv_runs(8);
    check(c);
    if (avx512) {
      EXPECT_EQ(cpu::winograd_conv_runs(16) > before16, f.narrow) << c.name << ": expected "
                                                                   << (f.narrow ? "our Winograd" : "oneDNN's");
    } else {
      EXPECT_EQ(cpu::winograd_conv_runs(16), before16) << c.name << ": the AVX-512 variant without AVX-512";
      if (cpu::WinogradConv::cpu_supported(8)) {
        EXPECT_GT(cpu::winograd_conv_runs(8), before8) << c.name;
      }
    }
  }
}

// check(c), and whether the product ran on rows_times_panels (few rows, small constant
// weights: matmul_op.cpp's small_product) rather than oneDNN's matmul.
void check_product(const OpCase& c, bool small) {
  const uint64_t before = cpu::small_matmul_runs();
  check(c);
  EXPECT_EQ(cpu::small_matmul_runs() > before, small) << c.name << ": expected " << (small ? "our rows kernel" : "oneDNN");
}

TEST(CpuVsRefTest, FusedMatMulWithBiasAndActivation) {
  for (const char* act : {"Relu", "Gelu", "Sigmoid"}) {
    OpCase c;
    c.name = std::string("FusedMatMul + bias + ") + act;
    c.node = node("FusedMatMul", {"a", "w", "b"}, "pyflame_rt");
    c.node.attributes["activation"] = Attribute::make_string(act);
    c.runtime = {{"a", random_tensor({3, 4, 9}, 61)}};
    c.constants = {{"w", random_tensor({9, 5}, 62)}, {"b", random_tensor({5}, 63)}};
    check_product(c, std::string(act) != "Gelu");  // Gelu: oneDNN's post-op
  }
}

TEST(CpuVsRefTest, MatMulAndGemm) {
  OpCase mm;
  mm.name = "matmul const weights, rank 3";
  mm.node = node("MatMul", {"a", "w"});
  mm.runtime = {{"a", random_tensor({2, 5, 7}, 21)}};
  mm.constants = {{"w", random_tensor({7, 3}, 22)}};
  check_product(mm, true);
  OpCase att;
  att.name = "batched matmul of activations";
  att.node = node("MatMul", {"a", "b"});
  att.runtime = {{"a", random_tensor({2, 3, 5, 8}, 23)}, {"b", random_tensor({2, 3, 8, 6}, 24)}};
  check_product(att, false);
  OpCase gemm;
  gemm.name = "gemm transB beta bias";
  gemm.node = node("Gemm", {"a", "w", "c"});
  gemm.node.attributes["transB"] = Attribute::make_int(1);
  gemm.node.attributes["beta"] = Attribute::make_float(0.5f);
  gemm.runtime = {{"a", random_tensor({3, 9}, 25)}};
  gemm.constants = {{"w", random_tensor({4, 9}, 26)}, {"c", random_tensor({4}, 27)}};
  check_product(gemm, true);
  // One row of a classifier's size: whole 64-column panels and a remainder; 17 rows or 2^20
  // multiply-adds and more go to oneDNN.
  for (int64_t rows : {1, 4, 17}) {
    OpCase g;
    g.name = "gemm transB [" + std::to_string(rows) + ", 300] x [300, 200]";
    g.node = node("Gemm", {"a", "w", "c"});
    g.node.attributes["transB"] = Attribute::make_int(1);
    g.runtime = {{"a", random_tensor({rows, 300}, 28)}};
    g.constants = {{"w", random_tensor({200, 300}, 29)}, {"c", random_tensor({200}, 30)}};
    check_product(g, rows * 300 * 200 <= (1 << 20) && rows <= 16);
  }
}

// Enough rows (>= 16) that the CPU device may run rows x constant weights as a 1x1
// convolution: plain and transposed weights, with and without bias, fused activations. 16 rows
// of these small weights (without an activation, or Relu) run on our rows kernel instead.
TEST(CpuVsRefTest, ManyRowsTimesConstantWeights) {
  uint32_t seed = 300;
  for (int64_t rows : {16, 40}) {
    OpCase mm;
    mm.name = "matmul rows=" + std::to_string(rows);
    mm.node = node("MatMul", {"a", "w"});
    mm.runtime = {{"a", random_tensor({2, rows, 24}, seed++)}};
    mm.constants = {{"w", random_tensor({24, 20}, seed++)}};
    check_product(mm, false);
    for (const char* act : {"", "Relu", "Gelu", "PRelu"}) {
      OpCase f;
      f.name = std::string("FusedMatMul rows=") + std::to_string(rows) + " " + act;
      f.node = node("FusedMatMul", {"a", "w", "b"}, "pyflame_rt");
      if (*act) f.node.attributes["activation"] = Attribute::make_string(act);
      if (std::string(act) == "PRelu") {
        std::vector<float> slopes(20);
        for (size_t i = 0; i < slopes.size(); ++i) slopes[i] = 0.05f * float(i) - 0.3f;
        f.node.attributes["activation_params"] = Attribute::make_floats(slopes);
      }
      f.runtime = {{"a", random_tensor({rows, 24}, seed++)}};
      f.constants = {{"w", random_tensor({24, 20}, seed++)}, {"b", random_tensor({20}, seed++)}};
      check_product(f, rows <= 16 && (!*act || std::string(act) == "Relu"));
    }
    OpCase gemm;
    gemm.name = "gemm transB rows=" + std::to_string(rows);
    gemm.node = node("Gemm", {"a", "w", "c"});
    gemm.node.attributes["transB"] = Attribute::make_int(1);
    gemm.runtime = {{"a", random_tensor({rows, 24}, seed++)}};
    gemm.constants = {{"w", random_tensor({20, 24}, seed++)}, {"c", random_tensor({20}, seed++)}};
    check_product(gemm, rows <= 16);
  }
}

TEST(CpuVsRefTest, PoolingAndEltwise) {
  struct P { std::string op; Dims k, s, pads; int64_t ceil, include; };
  std::vector<P> pools = {{"MaxPool", {3, 3}, {2, 2}, {1, 1, 1, 1}, 0, 0},
                          {"MaxPool", {2, 3}, {2, 2}, {0, 0, 0, 0}, 1, 0},
                          {"AveragePool", {3, 3}, {2, 1}, {1, 1, 1, 1}, 0, 1},
                          {"AveragePool", {3, 2}, {2, 2}, {0, 1, 0, 1}, 1, 0}};
  for (const auto& p : pools) {
    OpCase c;
    c.name = p.op + " ceil=" + std::to_string(p.ceil);
    c.node = node(p.op, {"x"});
    c.node.attributes["kernel_shape"] = Attribute::make_ints(p.k);
    c.node.attributes["strides"] = Attribute::make_ints(p.s);
    c.node.attributes["pads"] = Attribute::make_ints(p.pads);
    c.node.attributes["ceil_mode"] = Attribute::make_int(p.ceil);
    if (p.op == "AveragePool") c.node.attributes["count_include_pad"] = Attribute::make_int(p.include);
    c.runtime = {{"x", random_tensor({2, 3, 11, 9}, 31)}};
    check(c);
  }
  OpCase gap;
  gap.name = "GlobalAveragePool";
  gap.node = node("GlobalAveragePool", {"x"});
  gap.runtime = {{"x", random_tensor({1, 5, 7, 6}, 32)}};
  check(gap);
  // Up to 4,096 elements in the plain layout our loops (small_eltwise.h) compute them, above
  // oneDNN's primitives: both sizes, and which ran.
  for (const char* act : {"Relu", "Sigmoid", "Tanh", "HardSwish", "LeakyRelu", "HardSigmoid", "Elu", "Clip", "Sqrt",
                          "Abs", "Neg"}) {
    for (const Dims& d : {Dims{2, 3, 4, 5}, Dims{5}, Dims{2, 8, 24, 24}}) {
      OpCase c;
      c.name = act + dims_to_string(d);
      c.node = node(act, {"x"});
      Tensor x = random_tensor(d, 33);
      if (std::string(act) == "Sqrt") {
        for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::fabs(x.data<float>()[i]);
      }
      if (std::string(act) == "Clip") {
        c.node.inputs = {"x", "lo", "hi"};
        c.constants = {{"lo", Tensor::from_vector<float>({}, {-0.3f})}, {"hi", Tensor::from_vector<float>({}, {0.4f})}};
      }
      c.runtime = {{"x", x}};
      // Elu stays with oneDNN (its exp(x) - 1 near 0 wants expm1); 1-D tensors of the others
      // only run natively on our loops (oneDNN's 1-D post-op chains are not exact).
      const bool small = std::string(act) != "Elu" && num_elements(d) <= cpu::kSmallEltwiseElements;
      if (d.size() == 1 && !small) c.native = false;
      const uint64_t before = cpu::small_eltwise_runs();
      check(c);
      EXPECT_EQ(cpu::small_eltwise_runs() > before, small) << c.name;
    }
  }
  struct B { const char* op; Dims a, b; bool small; };
  std::vector<B> binaries = {{"Add", {2, 3, 4, 5}, {2, 3, 4, 5}, true}, {"Add", {1, 4}, {4}, true},
                             {"Mul", {2, 3, 4, 5}, {3, 1, 1}, false}, {"Mul", {3, 1, 1}, {2, 3, 4, 5}, false},
                             {"Sub", {2, 3, 4, 5}, {5}, true}, {"Sub", {5}, {2, 3, 4, 5}, false},
                             {"Div", {2, 6, 3}, {2, 6, 1}, false}, {"Add", {2, 1, 4}, {3, 1}, false},
                             {"Div", {4, 5, 6}, {}, true}, {"Div", {3}, {3}, true},
                             // A bias over trailing dims (rows kernel): seq-first [T, 1, C] + [C].
                             {"Add", {6, 1, 8}, {8}, true}, {"Sub", {7, 1, 5}, {1, 1, 5}, true},
                             {"Mul", {3, 2, 4, 5}, {4, 5}, true}, {"Mul", {2, 3}, {1, 2, 3}, true},
                             // Past 4,096 elements: oneDNN's binary.
                             {"Add", {4, 3, 32, 32}, {4, 3, 32, 32}, false}, {"Sub", {64, 1, 80}, {80}, false},
                             {"Div", {2, 3, 40, 40}, {}, false}};
  uint32_t seed = 40;
  for (const auto& b : binaries) {
    OpCase c;
    c.name = std::string(b.op) + dims_to_string(b.a) + dims_to_string(b.b);
    c.node = node(b.op, {"x", "z"});
    c.runtime = {{"x", random_tensor(b.a, seed++)}, {"z", random_tensor(b.b, seed++)}};
    // Every pair runs natively: small plain pairs on our loops, the shapes oneDNN's binary
    // takes there, the rest (a smaller first operand of Sub, two-sided broadcasts) on
    // arith_op's plain loop.
    c.native = true;
    const uint64_t before = cpu::small_eltwise_runs();
    check(c);
    EXPECT_EQ(cpu::small_eltwise_runs() > before, b.small) << c.name;
  }
}

TEST(CpuVsRefTest, NormalisationSoftmaxAndDataMovement) {
  OpCase ln;
  ln.name = "LayerNormalization";
  ln.node = node("LayerNormalization", {"x", "g", "b"});
  ln.node.attributes["epsilon"] = Attribute::make_float(1e-3f);
  ln.runtime = {{"x", random_tensor({3, 5, 7}, 51)}};
  ln.constants = {{"g", random_tensor({7}, 52)}, {"b", random_tensor({7}, 53)}};
  check(ln);
  OpCase sm;
  sm.name = "Softmax";
  sm.node = node("Softmax", {"x"});
  sm.runtime = {{"x", random_tensor({2, 3, 9}, 54)}};
  check(sm);
  OpCase tr;
  tr.name = "Transpose";
  tr.node = node("Transpose", {"x"});
  tr.node.attributes["perm"] = Attribute::make_ints({2, 0, 3, 1});
  tr.runtime = {{"x", random_tensor({2, 3, 4, 5}, 55)}};
  check(tr);
  OpCase sl;
  sl.name = "Slice";
  sl.node = node("Slice", {"x", "starts", "ends", "axes"});
  sl.runtime = {{"x", random_tensor({4, 6, 5}, 56)}};
  sl.constants = {{"starts", Tensor::from_vector<int64_t>({2}, {1, -4})},
                  {"ends", Tensor::from_vector<int64_t>({2}, {100, -1})},
                  {"axes", Tensor::from_vector<int64_t>({2}, {0, 2})}};
  check(sl);
}

TEST(CpuVsRefTest, Gru) {
  // Batches above 4 that are time-major with constant weights run on oneDNN's GRU (one per
  // direction), the others on our loop (recurrent_loop_runs() tells which ran).
  // H 70 and in 33 (our loop's products: whole 64-column panels, 16-column blocks and single
  // columns); `runtime_weights`: W, R and B as run-time inputs, packed per run, not once.
  struct G {
    std::string direction;
    int64_t lbr, layout;
    bool bias, h0;
    int64_t H = 6, in = 7;
    bool runtime_weights = false;
    int64_t batch = 3;
  };
  std::vector<G> confs = {{"forward", 1, 0, true, true},  {"reverse", 0, 0, true, false},
                          {"forward", 0, 0, false, true}, {"reverse", 1, 0, false, true},
                          {"forward", 1, 1, true, true},  {"bidirectional", 1, 1, false, true},
                          {"bidirectional", 0, 0, true, true},
                          {"bidirectional", 0, 1, true, true, 70, 33}, {"bidirectional", 1, 0, true, false, 70, 33},
                          {"bidirectional", 0, 0, true, true, 70, 33, true}, {"forward", 1, 1, true, true, 6, 7, true},
                          {"forward", 1, 0, true, true, 6, 7, false, 5},  {"reverse", 0, 0, true, false, 6, 7, false, 6},
                          {"bidirectional", 1, 0, true, true, 70, 33, false, 9},
                          {"forward", 0, 1, true, true, 6, 7, false, 5},  // oneDNN's GRU is time-major only
                          {"forward", 1, 0, true, true, 6, 7, true, 5}};
  uint32_t seed = 60;
  for (const auto& g : confs) {
    int64_t dirs = g.direction == "bidirectional" ? 2 : 1, seq = 5, batch = g.batch, in = g.in, H = g.H;
    OpCase c;
    c.name = "GRU " + g.direction + " lbr=" + std::to_string(g.lbr) + " layout=" + std::to_string(g.layout) +
             " H=" + std::to_string(H) + " batch=" + std::to_string(batch) + (g.runtime_weights ? " run-time weights" : "");
    c.node = node("GRU", {"x", "w", "r", g.bias ? "b" : "", "", g.h0 ? "h0" : ""});
    c.node.outputs = {"y", "yh"};
    c.node.attributes["hidden_size"] = Attribute::make_int(H);
    c.node.attributes["direction"] = Attribute::make_string(g.direction);
    c.node.attributes["linear_before_reset"] = Attribute::make_int(g.lbr);
    c.node.attributes["layout"] = Attribute::make_int(g.layout);
    c.runtime = {{"x", random_tensor(g.layout ? Dims{batch, seq, in} : Dims{seq, batch, in}, seed++)}};
    if (g.h0) c.runtime.push_back({"h0", random_tensor(g.layout ? Dims{batch, dirs, H} : Dims{dirs, batch, H}, seed++)});
    auto& weights = g.runtime_weights ? c.runtime : c.constants;
    weights.push_back({"w", random_tensor({dirs, 3 * H, in}, seed++)});
    weights.push_back({"r", random_tensor({dirs, 3 * H, H}, seed++)});
    if (g.bias) weights.push_back({"b", random_tensor({dirs, 6 * H}, seed++)});
    const bool loop = g.runtime_weights || g.layout == 1 || batch <= 4;
    const uint64_t loops = cpu::recurrent_loop_runs();
    check(c);
    EXPECT_EQ(cpu::recurrent_loop_runs() > loops, loop) << c.name << ": expected " << (loop ? "our loop" : "oneDNN's GRU");
  }
}

Attribute strings_attr(std::vector<std::string> v) {
  Attribute a;
  a.kind = AttrKind::kStrings;
  a.strings = std::move(v);
  return a;
}

// One recurrent node (LSTM, RNN) against the reference, and which native kernel ran: our loop
// (recurrent_loop.h counts its runs) or oneDNN's primitive.
struct RecurrentCase {
  std::string direction = "forward";
  int64_t H = 6, in = 7, batch = 3, layout = 0;
  bool bias = true, h0 = true, c0 = true, runtime_weights = false;
  std::vector<int32_t> lens;  // sequence_lens (empty: none)
  bool peepholes = false;
  float clip = 0;
  int64_t input_forget = 0;
  std::vector<std::string> acts;
  std::vector<float> alphas, betas;
  bool loop = true;  // false: oneDNN's LSTM runs it
};

void check_recurrent(const std::string& op, const RecurrentCase& r, uint32_t seed) {
  const bool lstm = op == "LSTM";
  const int64_t dirs = r.direction == "bidirectional" ? 2 : 1, seq = 5, H = r.H, G = lstm ? 4 : 1;
  OpCase c;
  c.name = op + " " + r.direction + " H=" + std::to_string(H) + " batch=" + std::to_string(r.batch) +
           " layout=" + std::to_string(r.layout) + (r.bias ? " B" : "") + (r.h0 ? " h0" : "") +
           (lstm && r.c0 ? " c0" : "") + (r.runtime_weights ? " run-time weights" : "") +
           (r.lens.empty() ? "" : " sequence_lens") + (r.peepholes ? " P" : "") +
           (r.clip > 0 ? " clip" : "") + (r.input_forget ? " input_forget" : "") +
           (r.acts.empty() ? "" : " " + r.acts[0] + "," + r.acts.back());
  std::vector<std::string> in = {"x", "w", "r", r.bias ? "b" : "", r.lens.empty() ? "" : "lens", r.h0 ? "h0" : ""};
  if (lstm) {
    in.push_back(r.c0 ? "c0" : "");
    in.push_back(r.peepholes ? "p" : "");
  }
  c.node = node(op, in);
  c.node.outputs = lstm ? std::vector<std::string>{"y", "yh", "yc"} : std::vector<std::string>{"y", "yh"};
  c.node.attributes["hidden_size"] = Attribute::make_int(H);
  c.node.attributes["direction"] = Attribute::make_string(r.direction);
  c.node.attributes["layout"] = Attribute::make_int(r.layout);
  if (r.clip > 0) c.node.attributes["clip"] = Attribute::make_float(r.clip);
  if (r.input_forget) c.node.attributes["input_forget"] = Attribute::make_int(r.input_forget);
  if (!r.acts.empty()) c.node.attributes["activations"] = strings_attr(r.acts);
  if (!r.alphas.empty()) c.node.attributes["activation_alpha"] = Attribute::make_floats(r.alphas);
  if (!r.betas.empty()) c.node.attributes["activation_beta"] = Attribute::make_floats(r.betas);
  const Dims state = r.layout ? Dims{r.batch, dirs, H} : Dims{dirs, r.batch, H};
  c.runtime = {{"x", random_tensor(r.layout ? Dims{r.batch, seq, r.in} : Dims{seq, r.batch, r.in}, seed++)}};
  if (r.h0) c.runtime.push_back({"h0", random_tensor(state, seed++)});
  if (lstm && r.c0) c.runtime.push_back({"c0", random_tensor(state, seed++)});
  auto& weights = r.runtime_weights ? c.runtime : c.constants;
  // Weights in [-1, 1) / sqrt(H), as PyTorch initialises them: with [-1, 1) an RNN of H 70
  // amplifies the float rounding of each step ~5x (the reference computes in double).
  auto scaled = [&](Dims dims) {
    Tensor t = random_tensor(std::move(dims), seed++);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] /= std::sqrt(static_cast<float>(H));
    return t;
  };
  weights.push_back({"w", scaled({dirs, G * H, r.in})});
  weights.push_back({"r", scaled({dirs, G * H, H})});
  if (r.bias) weights.push_back({"b", scaled({dirs, 2 * G * H})});
  if (r.peepholes) weights.push_back({"p", random_tensor({dirs, 3 * H}, seed++)});
  if (!r.lens.empty()) {
    c.constants.push_back({"lens", Tensor::from_vector<int32_t>({static_cast<int64_t>(r.lens.size())}, r.lens)});
  }
  const uint64_t loops = cpu::recurrent_loop_runs();
  check(c);
  EXPECT_EQ(cpu::recurrent_loop_runs() > loops, r.loop) << c.name << ": expected "
                                                         << (r.loop ? "our loop" : "oneDNN's LSTM");
}

TEST(CpuVsRefTest, Lstm) {
  // Our loop runs every LSTM but batches above 8 with constant weights, time-major and none
  // of sequence_lens, peepholes, clip, input_forget or other activations (oneDNN's LSTM, one
  // per direction: gates reordered from ONNX's i, o, f, c; B's two halves summed).
  // H 70 and in 33: whole 64-column panels, 16-column blocks and single columns in the
  // products; batch 5: a block of four rows and one more.
  auto with = [](RecurrentCase r, auto&& edit) { edit(r); return r; };
  const RecurrentCase base;
  std::vector<RecurrentCase> confs = {
      base,
      with(base, [](auto& r) { r.direction = "reverse"; r.h0 = r.c0 = false; }),
      with(base, [](auto& r) { r.H = 16; r.in = 5; r.bias = false; r.c0 = false; }),
      with(base, [](auto& r) { r.direction = "bidirectional"; r.H = 9; r.in = 4; }),
      with(base, [](auto& r) { r.direction = "bidirectional"; r.bias = r.h0 = false; }),
      with(base, [](auto& r) { r.direction = "bidirectional"; r.H = 70; r.in = 33; r.batch = 5; }),
      with(base, [](auto& r) { r.layout = 1; r.direction = "bidirectional"; }),
      with(base, [](auto& r) { r.layout = 1; r.runtime_weights = true; r.batch = 5; }),
      with(base, [](auto& r) { r.runtime_weights = true; r.direction = "bidirectional"; r.H = 70; r.in = 33; }),
      with(base, [](auto& r) { r.lens = {5, 2, 0}; }),
      with(base, [](auto& r) { r.lens = {3, 5, 1}; r.direction = "reverse"; }),
      with(base, [](auto& r) { r.lens = {4, 0, 5}; r.direction = "bidirectional"; r.layout = 1; }),
      with(base, [](auto& r) { r.peepholes = true; }),
      with(base, [](auto& r) { r.peepholes = true; r.clip = 0.5f; r.direction = "bidirectional"; }),
      with(base, [](auto& r) { r.clip = 0.3f; }),
      with(base, [](auto& r) { r.input_forget = 1; r.direction = "reverse"; }),
      with(base, [](auto& r) { r.input_forget = 1; r.peepholes = true; r.lens = {2, 5, 3}; }),
      with(base, [](auto& r) {
        r.direction = "bidirectional";
        r.acts = {"HardSigmoid", "LeakyRelu", "ScaledTanh", "Sigmoid", "Affine", "Elu"};
        r.alphas = {0.3f, 0.05f, 1.5f, 0.7f, 0.9f};
        r.betas = {0.4f, 0.8f, -0.1f};
      }),
      with(base, [](auto& r) { r.acts = {"Relu", "Softsign", "Softplus"}; }),
      with(base, [](auto& r) { r.acts = {"sigmoid", "ThresholdedRelu", "tanh"}; r.alphas = {0.2f}; }),
      with(base, [](auto& r) { r.H = 130; r.direction = "bidirectional"; r.h0 = false; }),
      with(base, [](auto& r) { r.batch = 9; r.loop = false; }),
      with(base, [](auto& r) { r.batch = 10; r.H = 9; r.direction = "bidirectional"; r.h0 = false; r.loop = false; }),
      with(base, [](auto& r) { r.batch = 9; r.direction = "reverse"; r.bias = r.c0 = false; r.loop = false; }),
      with(base, [](auto& r) { r.batch = 9; r.layout = 1; }),  // oneDNN's LSTM is time-major only
      with(base, [](auto& r) { r.batch = 9; r.lens = {1, 5, 4, 5, 5, 0, 2, 3, 5}; }),
      with(base, [](auto& r) { r.batch = 9; r.peepholes = true; }),
      with(base, [](auto& r) { r.batch = 9; r.runtime_weights = true; }),
  };
  uint32_t seed = 160;
  for (const auto& r : confs) {
    check_recurrent("LSTM", r, seed);
    seed += 10;
  }
}

// Optional outputs absent: only Y_h asked for (the loop then writes no Y), as an encoder's
// last-state export does; for the LSTM, also only Y_c.
TEST(CpuVsRefTest, RecurrentWithOnlyItsFinalState) {
  struct Case { std::string op; std::vector<std::string> outputs; };
  for (const Case& k : {Case{"LSTM", {"", "yh"}}, Case{"LSTM", {"", "", "yc"}}, Case{"RNN", {"", "yh"}},
                        Case{"LSTM", {"y"}}}) {
    const int64_t G = k.op == "LSTM" ? 4 : 1, H = 5, in = 3, seq = 4, batch = 2;
    Graph g;
    g.opset_imports[""] = 14;
    g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({seq, batch, in})});
    g.initializers["w"] = random_tensor({2, G * H, in}, 500);
    g.initializers["r"] = random_tensor({2, G * H, H}, 501);
    Node& n = g.add_node(k.op, {"x", "w", "r"}, k.outputs, "rec");
    n.attributes["hidden_size"] = Attribute::make_int(H);
    n.attributes["direction"] = Attribute::make_string("bidirectional");
    for (const auto& out : k.outputs) {
      if (!out.empty()) g.outputs.push_back({out, DType::kFloat32, Shape::unknown_rank()});
    }
    std::vector<Value> feeds;
    feeds.emplace_back(random_tensor({seq, batch, in}, 502));
    const uint64_t loops = cpu::recurrent_loop_runs();
    expect_graph_matches_ref(g, feeds, k.op + " " + k.outputs.back());
    EXPECT_GT(cpu::recurrent_loop_runs(), loops) << k.op;
  }
}

TEST(CpuVsRefTest, Rnn) {
  // Every RNN on our loop (recurrent_loop.h): Tanh by default, Relu and Sigmoid, both layouts,
  // sequence_lens, clip, run-time weights.
  auto with = [](RecurrentCase r, auto&& edit) { edit(r); return r; };
  const RecurrentCase base;
  std::vector<RecurrentCase> confs = {
      base,
      with(base, [](auto& r) { r.direction = "reverse"; r.h0 = false; r.bias = false; }),
      with(base, [](auto& r) { r.direction = "bidirectional"; r.H = 70; r.in = 33; r.batch = 5; }),
      with(base, [](auto& r) { r.direction = "bidirectional"; r.layout = 1; r.acts = {"Relu", "Sigmoid"}; }),
      with(base, [](auto& r) { r.runtime_weights = true; r.layout = 1; }),
      with(base, [](auto& r) { r.lens = {5, 0, 3}; r.direction = "bidirectional"; }),
      with(base, [](auto& r) { r.lens = {2, 4, 5}; r.direction = "reverse"; r.layout = 1; }),
      with(base, [](auto& r) { r.clip = 0.4f; r.acts = {"Relu"}; }),
      with(base, [](auto& r) { r.acts = {"Affine"}; r.alphas = {0.5f}; r.betas = {0.1f}; r.H = 16; }),
  };
  uint32_t seed = 400;
  for (const auto& r : confs) {
    check_recurrent("RNN", r, seed);
    seed += 10;
  }
}

}  // namespace
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// A per-channel scale times a blocked conv output (the squeeze-excite pattern): the scale is
// laid out like the conv output, channel counts that fill and that pad the 8-channel blocks.
// Transpose on every path: our batched 2-D transpose (NCHW <-> NHWC, a matrix, with unit axes
// and sizes that are no multiple of the 8 x 8 blocks), memcpy runs where the last axis stays last
// (ShuffleNet's channel shuffle), oneDNN's reorder of a strided view (any other permutation that
// is no 2-D transpose), and int32 through the 4-byte kernel.
TEST(CpuVsRefTest, TransposeOverPermutations) {
  struct Perm {
    Dims dims;
    std::vector<int64_t> perm;
  };
  const std::vector<Perm> perms = {
      {{1, 56, 56, 96}, {0, 3, 1, 2}}, {{1, 96, 56, 56}, {0, 2, 3, 1}}, {{2, 13, 7, 19}, {0, 3, 1, 2}},
      {{2, 19, 13, 7}, {0, 2, 3, 1}},  {{37, 23}, {1, 0}},               {{3, 1, 17, 1, 9}, {4, 1, 3, 0, 2}},
      {{4, 9, 33}, {0, 2, 1}},         {{5, 6, 7, 8}, {2, 0, 3, 1}},     {{64, 300}, {1, 0}},
      {{1, 2, 58, 28, 28}, {0, 2, 1, 3, 4}}, {{3, 5, 16}, {1, 0, 2}}, {{2, 3, 4, 32}, {2, 0, 1, 3}},
      {{4, 3, 15}, {1, 0, 2}},  // the last axis stays last: memcpy runs from 16 elements, a reorder below
      {{1, 50, 64}, {1, 0, 2}},        {{3, 1, 1, 5}, {0, 2, 3, 1}}};  // the last two only move unit axes: views
  uint32_t seed = 300;
  for (const Perm& p : perms) {
    OpCase tr;
    tr.name = "Transpose of " + dims_to_string(p.dims);
    tr.node = node("Transpose", {"x"});
    tr.node.attributes["perm"] = Attribute::make_ints(p.perm);
    tr.runtime = {{"x", random_tensor(p.dims, ++seed)}};
    check(tr);
  }
}

// Transpose of a conv output held blocked: one reorder from the blocked layout into the
// permuted output (ConvNeXt's NCHW -> NHWC after its depthwise convolutions), every axis order.
TEST(CpuVsRefTest, TransposeOfABlockedConvOutput) {
  const std::vector<std::vector<int64_t>> perms = {{0, 2, 3, 1}, {0, 3, 1, 2}, {3, 2, 1, 0}, {1, 0, 2, 3}};
  for (int64_t C : {12, 16, 40}) {
    for (const auto& perm : perms) {
      Graph g = blocked_conv_graph(C, 93);
      Node& tr = g.add_node("Transpose", {"c"}, {"y"}, "transpose");
      tr.attributes["perm"] = Attribute::make_ints(perm);
      g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
      std::vector<Value> feeds;
      feeds.emplace_back(random_tensor({2, 4, 9, 9}, 94));
      expect_graph_matches_ref(g, feeds, "C=" + std::to_string(C) + " perm " + std::to_string(perm[1]));
    }
  }
}

TEST(CpuVsRefTest, BroadcastMulOnABlockedConvOutput) {
  for (int64_t C : {8, 12, 16}) {
    Graph g = blocked_conv_graph(C, 90);
    g.inputs.push_back({"s", DType::kFloat32, Shape::from_dims({2, C, 1, 1})});
    g.add_node("Mul", {"c", "s"}, {"y"}, "scale");
    g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
    std::vector<Value> feeds;
    feeds.emplace_back(random_tensor({2, 4, 9, 9}, 91));
    feeds.emplace_back(random_tensor({2, C, 1, 1}, 92));
    expect_graph_matches_ref(g, feeds, "C=" + std::to_string(C));
  }
}

}  // namespace
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// Squeeze-excite on a blocked conv output: our GlobalAveragePool over nChw8c or (AVX-512,
// wider convs) nChw16c (channel counts with padding, a spatial size that is no multiple of 4,
// a batch of 2), then the scale Mul written over the conv output it reads last.
TEST(CpuVsRefTest, SqueezeExciteOnABlockedConvOutput) {
  for (int64_t C : {8, 12, 24, 20, 40}) {
    Graph g = blocked_conv_graph(C, 93);
    g.add_node("GlobalAveragePool", {"c"}, {"m"}, "squeeze");
    g.add_node("Sigmoid", {"m"}, {"s"}, "gate");
    g.add_node("Mul", {"c", "s"}, {"y"}, "excite");
    g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
    g.outputs.push_back({"m", DType::kFloat32, Shape::unknown_rank()});
    std::vector<Value> feeds;
    feeds.emplace_back(random_tensor({2, 4, 9, 9}, 94));
    expect_graph_matches_ref(g, feeds, "C=" + std::to_string(C));
  }
}

// Concat along channels of two blocked conv outputs (DenseNet's pattern), read by a conv in the
// blocked layout: whole channel blocks are joined in that layout (16 + 32 channels), channel
// counts with padding (12 + 16) go through the plain concat; a batch of 2 checks the per-image
// runs.
TEST(CpuVsRefTest, ChannelConcatOfBlockedConvOutputs) {
  for (const auto& [ca, cb] : std::vector<std::pair<int64_t, int64_t>>{{16, 32}, {12, 16}}) {
    Graph g = blocked_conv_graph(ca, 97);
    g.initializers["w2"] = random_tensor({cb, 4, 3, 3}, 98);
    g.initializers["w3"] = random_tensor({8, ca + cb, 1, 1}, 99);
    Node& conv2 = g.add_node("Conv", {"x", "w2"}, {"d"}, "conv2");
    conv2.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
    for (Node& n : g.nodes) n.attributes["pyflame_rt_dst_layout"] = Attribute::make_string("blocked");
    g.add_node("Concat", {"c", "d"}, {"cat"}, "concat").attributes["axis"] = Attribute::make_int(1);
    Node& conv3 = g.add_node("Conv", {"cat", "w3"}, {"y"}, "conv3");
    conv3.attributes["pyflame_rt_src_layout"] = Attribute::make_string("blocked");
    g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
    g.outputs.push_back({"cat", DType::kFloat32, Shape::unknown_rank()});
    std::vector<Value> feeds;
    feeds.emplace_back(random_tensor({2, 4, 9, 9}, 100));
    expect_graph_matches_ref(g, feeds, "channels " + std::to_string(ca) + " + " + std::to_string(cb));
  }
}

// pyflame_rt.FusedConcat (concat_affine_fusion: DenseNet's Concat -> BatchNorm -> Relu) on
// blocked conv outputs (16 + 32 channels: whole blocks, the output stays blocked), on
// channel counts with padding (12 + 16: made plain) and on plain graph inputs, with and without
// the Relu; the native kernel must run in every case.
TEST(CpuVsRefTest, FusedConcatAppliesScaleShiftAndReluNatively) {
  for (bool relu : {true, false}) {
    for (const auto& [ca, cb] : std::vector<std::pair<int64_t, int64_t>>{{16, 32}, {12, 16}, {0, 0}}) {
      const bool from_convs = ca > 0;
      const int64_t total = from_convs ? ca + cb : 3 + 5;
      Graph g;
      std::vector<Value> feeds;
      if (from_convs) {
        g = blocked_conv_graph(ca, 101);
        g.initializers["w2"] = random_tensor({cb, 4, 3, 3}, 102);
        Node& conv2 = g.add_node("Conv", {"x", "w2"}, {"d"}, "conv2");
        conv2.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
        for (Node& n : g.nodes) n.attributes["pyflame_rt_dst_layout"] = Attribute::make_string("blocked");
        feeds.emplace_back(random_tensor({2, 4, 9, 9}, 103));
      } else {
        g.opset_imports[""] = 13;
        g.inputs = {{"c", DType::kFloat32, Shape::from_dims({2, 3, 4, 5})},
                    {"d", DType::kFloat32, Shape::from_dims({2, 5, 4, 5})}};
        feeds.emplace_back(random_tensor({2, 3, 4, 5}, 104));
        feeds.emplace_back(random_tensor({2, 5, 4, 5}, 105));
      }
      g.opset_imports["pyflame_rt"] = 1;
      Tensor scale = random_tensor({total}, 106), shift = random_tensor({total}, 107);
      Node& cat = g.add_node("FusedConcat", {"c", "d"}, {"y"}, "fused_concat");
      cat.domain = "pyflame_rt";
      cat.attributes["axis"] = Attribute::make_int(1);
      cat.attributes["scale"] = Attribute::make_floats(std::vector<float>(scale.data<float>(), scale.data<float>() + total));
      cat.attributes["shift"] = Attribute::make_floats(std::vector<float>(shift.data<float>(), shift.data<float>() + total));
      if (relu) cat.attributes["activation"] = Attribute::make_string("Relu");
      g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
      const std::string label = "FusedConcat " + std::to_string(ca) + " + " + std::to_string(cb) + (relu ? " relu" : "");
      expect_graph_matches_ref(g, feeds, label);
      auto cpu = make_cpu_device(2)->compile(g);
      ASSERT_TRUE(cpu.ok()) << label;
      ASSERT_TRUE((*cpu)->run(feeds).ok()) << label;
      auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
      ASSERT_NE(program, nullptr);
      for (const auto& [node_name, native] : program->native_by_node()) EXPECT_TRUE(native) << label << ": " << node_name;
    }
  }
}

// pyflame_rt.SqueezeExcite (squeeze_excite_fusion) on a blocked conv output (32 channels, and 24:
// padded in AVX-512's 16-channel blocks), scaled in place or, when the conv output is also a
// graph output, into a new buffer; and on a plain graph input. EfficientNet's SiLU/Sigmoid and
// MobileNetV3's Relu/HardSigmoid. The native kernel must run in every case.
TEST(CpuVsRefTest, SqueezeExciteNatively) {
  struct Conf { int64_t channels; bool from_conv, conv_is_output; const char* act; const char* gate; };
  for (const Conf& f : {Conf{32, true, false, "SiLU", "Sigmoid"}, Conf{24, true, true, "Relu", "HardSigmoid"},
                        Conf{24, true, false, "SiLU", "Sigmoid"}, Conf{6, false, false, "", "Sigmoid"}}) {
    const int64_t C = f.channels, hidden = 4;
    Graph g;
    std::vector<Value> feeds;
    std::string x = "x";
    if (f.from_conv) {
      g = blocked_conv_graph(C, 111);
      g.nodes[0].attributes["pyflame_rt_dst_layout"] = Attribute::make_string("blocked");
      x = "c";
      feeds.emplace_back(random_tensor({2, 4, 9, 9}, 112));
      if (f.conv_is_output) g.outputs.push_back({"c", DType::kFloat32, Shape::unknown_rank()});
    } else {
      g.opset_imports[""] = 13;
      g.inputs = {{"x", DType::kFloat32, Shape::from_dims({2, C, 5, 3})}};
      feeds.emplace_back(random_tensor({2, C, 5, 3}, 113));
    }
    g.opset_imports["pyflame_rt"] = 1;
    g.initializers["w1"] = random_tensor({hidden, C, 1, 1}, 114);
    g.initializers["b1"] = random_tensor({hidden}, 115);
    g.initializers["w2"] = random_tensor({C, hidden, 1, 1}, 116);
    g.initializers["b2"] = random_tensor({C}, 117);
    Node& se = g.add_node("SqueezeExcite", {x, "w1", "b1", "w2", "b2"}, {"y"}, "se");
    se.domain = "pyflame_rt";
    if (*f.act) se.attributes["activation"] = Attribute::make_string(f.act);
    se.attributes["gate"] = Attribute::make_string(f.gate);
    if (std::string(f.gate) == "HardSigmoid") se.attributes["gate_params"] = Attribute::make_floats({0.25f, 0.4f});
    g.outputs.insert(g.outputs.begin(), {"y", DType::kFloat32, Shape::unknown_rank()});
    const std::string label = "SqueezeExcite C=" + std::to_string(C) + " " + f.act + "/" + f.gate +
                              (f.conv_is_output ? " (input also an output)" : "");
    expect_graph_matches_ref(g, feeds, label);
    auto cpu = make_cpu_device(2)->compile(g);
    ASSERT_TRUE(cpu.ok()) << label;
    ASSERT_TRUE((*cpu)->run(feeds).ok()) << label;
    auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
    ASSERT_NE(program, nullptr);
    for (const auto& [node_name, native] : program->native_by_node()) EXPECT_TRUE(native) << label << ": " << node_name;
  }
}

// pyflame_rt.SqueezeExcite on 1-D and 3-D feature maps (a speaker model's squeeze-excite over
// time): on a 1-D conv's output in oneDNN's layout for it (channels-last on AVX-512, blocked on
// AVX2), large enough for the team to split it (rows summed per thread), scaled in place or,
// when the conv output is also a graph output, into a new buffer; on a 3-D conv's output (its
// blocked layout); and on plain graph inputs of rank 3 and 5. The native kernel must run.
TEST(CpuVsRefTest, SqueezeExciteOnOneAndThreeDimensionalMaps) {
  struct Conf { Dims x; int64_t channels; bool from_conv, conv_is_output; };
  for (const Conf& f : {Conf{{2, 4, 500}, 40, true, false}, Conf{{1, 4, 37}, 24, true, true},
                        Conf{{1, 3, 6, 5, 7}, 20, true, false}, Conf{{2, 6, 7}, 6, false, false},
                        Conf{{1, 6, 3, 4, 5}, 6, false, false}}) {
    const int64_t C = f.channels, hidden = 5;
    const size_t spatial = f.x.size() - 2;
    Graph g;
    g.opset_imports[""] = 13;
    g.opset_imports["pyflame_rt"] = 1;
    g.inputs = {{"x", DType::kFloat32, Shape::from_dims(f.x)}};
    std::string x = "x";
    if (f.from_conv) {
      Dims w = {C, f.x[1]};
      w.resize(2 + spatial, 3);
      g.initializers["w"] = random_tensor(w, 130);
      Node& conv = g.add_node("Conv", {"x", "w"}, {"c"}, "conv");
      conv.attributes["pads"] = Attribute::make_ints(std::vector<int64_t>(2 * spatial, 1));
      x = "c";
      if (f.conv_is_output) g.outputs.push_back({"c", DType::kFloat32, Shape::unknown_rank()});
    }
    Dims w1 = {hidden, C}, w2 = {C, hidden};
    w1.resize(2 + spatial, 1);
    w2.resize(2 + spatial, 1);
    g.initializers["w1"] = random_tensor(w1, 131);
    g.initializers["b1"] = random_tensor({hidden}, 132);
    g.initializers["w2"] = random_tensor(w2, 133);
    g.initializers["b2"] = random_tensor({C}, 134);
    Node& se = g.add_node("SqueezeExcite", {x, "w1", "b1", "w2", "b2"}, {"y"}, "se");
    se.domain = "pyflame_rt";
    se.attributes["activation"] = Attribute::make_string("Relu");
    se.attributes["gate"] = Attribute::make_string("Sigmoid");
    g.outputs.insert(g.outputs.begin(), {"y", DType::kFloat32, Shape::unknown_rank()});
    const std::string label = "SqueezeExcite x" + dims_to_string(f.x) + " C=" + std::to_string(C) +
                              (f.from_conv ? " after a conv" : "") + (f.conv_is_output ? " (also an output)" : "");
    std::vector<Value> feeds;
    feeds.emplace_back(random_tensor(f.x, 135));
    expect_graph_matches_ref(g, feeds, label);
    auto cpu = make_cpu_device(2)->compile(g);
    ASSERT_TRUE(cpu.ok()) << label;
    ASSERT_TRUE((*cpu)->run(feeds).ok()) << label;
    auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
    ASSERT_NE(program, nullptr);
    for (const auto& [node_name, native] : program->native_by_node()) EXPECT_TRUE(native) << label << ": " << node_name;
  }
}

// MaxPool on a blocked conv output runs our nChw8c (AVX2) or nChw16c (AVX-512) loop: padded
// windows, a ceil_mode window that hangs over the edge, channel counts with padding (20: a
// whole 16-channel block and a padded one).
TEST(CpuVsRefTest, MaxPoolOnABlockedConvOutput) {
  struct Conf { std::vector<int64_t> kernel, strides, pads; int64_t ceil; };
  for (const Conf& f : {Conf{{3, 3}, {2, 2}, {1, 1, 1, 1}, 0}, Conf{{2, 2}, {2, 2}, {0, 0, 0, 0}, 1},
                        Conf{{3, 2}, {1, 2}, {0, 1, 2, 0}, 0}}) {
    for (int64_t C : {8, 12, 20}) {
      Graph g = blocked_conv_graph(C, 95);
      Node& pool = g.add_node("MaxPool", {"c"}, {"y"}, "pool");
      pool.attributes["kernel_shape"] = Attribute::make_ints(f.kernel);
      pool.attributes["strides"] = Attribute::make_ints(f.strides);
      pool.attributes["pads"] = Attribute::make_ints(f.pads);
      pool.attributes["ceil_mode"] = Attribute::make_int(f.ceil);
      g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
      std::vector<Value> feeds;
      feeds.emplace_back(random_tensor({2, 4, 9, 9}, 96));
      expect_graph_matches_ref(g, feeds, "C=" + std::to_string(C) + " kernel " + std::to_string(f.kernel[0]) + "x" +
                                             std::to_string(f.kernel[1]) + " ceil " + std::to_string(f.ceil));
    }
  }
}

// AveragePool on a blocked conv output with every window inside the input runs our nChw8c
// (AVX2) or nChw16c (AVX-512) loop (DenseNet's transitions); padded windows and ceil_mode
// windows over the edge stay on oneDNN's. Channel counts with padding (12, 20).
TEST(CpuVsRefTest, AveragePoolOnABlockedConvOutput) {
  struct Conf { std::vector<int64_t> kernel, strides, pads; int64_t ceil, include_pad; bool own; };
  for (const Conf& f : {Conf{{2, 2}, {2, 2}, {0, 0, 0, 0}, 0, 0, true}, Conf{{3, 3}, {2, 2}, {0, 0, 0, 0}, 0, 1, true},
                        Conf{{2, 3}, {1, 2}, {0, 0, 0, 0}, 0, 0, true}, Conf{{3, 3}, {2, 2}, {1, 1, 1, 1}, 0, 0, false},
                        Conf{{2, 2}, {2, 2}, {0, 0, 0, 0}, 1, 0, false}}) {
    for (int64_t C : {8, 12, 20, 32}) {
      Graph g = blocked_conv_graph(C, 95);
      Node& pool = g.add_node("AveragePool", {"c"}, {"y"}, "pool");
      pool.attributes["kernel_shape"] = Attribute::make_ints(f.kernel);
      pool.attributes["strides"] = Attribute::make_ints(f.strides);
      pool.attributes["pads"] = Attribute::make_ints(f.pads);
      pool.attributes["ceil_mode"] = Attribute::make_int(f.ceil);
      pool.attributes["count_include_pad"] = Attribute::make_int(f.include_pad);
      g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
      std::vector<Value> feeds;
      feeds.emplace_back(random_tensor({2, 4, 9, 9}, 96));
      const std::string label = "C=" + std::to_string(C) + " kernel " + std::to_string(f.kernel[0]) + "x" +
                                std::to_string(f.kernel[1]) + " pads " + std::to_string(f.pads[0]) + " ceil " +
                                std::to_string(f.ceil);
      const uint64_t before = cpu::own_average_pool_runs();
      expect_graph_matches_ref(g, feeds, label);
      EXPECT_EQ(cpu::own_average_pool_runs() > before, f.own) << label << ": expected "
                                                               << (f.own ? "our loop" : "oneDNN's pooling");
    }
  }
}

// A global pool's blocked [n, c, 1, 1] output read plain by Flatten (a classifier's head): with
// the channels in whole blocks its bytes are copied as they are (dnnl_util.cpp), otherwise
// reordered; batches of 1 and 2, channels in whole 8- and 16-channel blocks and not.
TEST(CpuVsRefTest, FlattenOfAGlobalPoolOnABlockedConvOutput) {
  for (int64_t C : {16, 24, 32, 12}) {
    for (int64_t n : {1, 2}) {
      Graph g;
      g.opset_imports[""] = 13;
      g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({n, 4, 6, 5})});
      g.initializers["w"] = random_tensor({C, 4, 3, 3}, 97);
      Node& conv = g.add_node("Conv", {"x", "w"}, {"c"}, "conv");
      conv.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
      g.add_node("GlobalAveragePool", {"c"}, {"p"}, "pool");
      g.add_node("Flatten", {"p"}, {"y"}, "flatten");
      g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
      std::vector<Value> feeds;
      feeds.emplace_back(random_tensor({n, 4, 6, 5}, 98));
      expect_graph_matches_ref(g, feeds, "C=" + std::to_string(C) + " n=" + std::to_string(n));
    }
  }
}

// A residual made by a native conv is summed into in place when the fused conv is its last
// reader; when a later node still reads it, it must come out untouched.
TEST(CpuVsRefTest, ResidualSummedInPlaceOnlyOnItsLastUse) {
  for (bool read_later : {false, true}) {
    Graph g;
    g.opset_imports[""] = 13;
    g.opset_imports["pyflame_rt"] = 1;
    g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 16, 7, 7})});
    g.initializers["wa"] = random_tensor({16, 16, 1, 1}, 70);
    g.initializers["w"] = random_tensor({16, 16, 3, 3}, 71);
    g.initializers["b"] = random_tensor({16}, 72);
    g.add_node("Conv", {"x", "wa"}, {"a"}, "shortcut");
    Node& fused = g.add_node("FusedConv", {"x", "w", "b", "a"}, {"y"}, "body");
    fused.domain = "pyflame_rt";
    fused.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
    fused.attributes["activation"] = Attribute::make_string("Relu");
    g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
    if (read_later) {
      g.add_node("Relu", {"a"}, {"a_later"}, "reads_a_again");
      g.outputs.push_back({"a_later", DType::kFloat32, Shape::unknown_rank()});
    }
    std::vector<Value> feeds;
    feeds.emplace_back(random_tensor({1, 16, 7, 7}, 73));
    auto cpu = make_cpu_device(2)->compile(g);
    auto ref = make_ref_device()->compile(g);
    ASSERT_TRUE(cpu.ok() && ref.ok()) << (cpu.ok() ? ref.status().to_string() : cpu.status().to_string());
    auto a = (*cpu)->run(feeds);
    auto b = (*ref)->run(feeds);
    ASSERT_TRUE(a.ok() && b.ok()) << (a.ok() ? b.status().to_string() : a.status().to_string());
    for (size_t o = 0; o < g.outputs.size(); ++o) {
      EXPECT_LT(max_normalised_error((*a)[o].tensor, (*b)[o].tensor), 1e-5) << "read_later=" << read_later << " output " << o;
    }
  }
}

}  // namespace
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// A graph with an If (SSDLite's post-processing has one): the nodes before and after it and
// its branches (native_if.h) run natively; the branches read an outer-scope value made
// natively (r), and a value made before the If is read after it (r again, by the Mul).
TEST(CpuVsRefTest, IfBranchesAndTheNodesAroundItRunNatively) {
  auto branch = [](const std::string& op) {
    auto g = std::make_shared<Graph>();
    g->initializers["one"] = Tensor::from_vector<float>({1}, {1.0f});
    g->add_node(op, {"r", "one"}, {"b"}, op == "Add" ? "then_add" : "else_sub");
    g->outputs.push_back({"b", DType::kFloat32, Shape::unknown_rank()});
    return g;
  };
  for (bool cond : {true, false}) {
    Graph g;
    g.opset_imports[""] = 13;
    g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({2, 8})});
    g.inputs.push_back({"c", DType::kBool, Shape::from_dims({})});
    g.add_node("Relu", {"x"}, {"r"}, "relu");
    Node& when = g.add_node("If", {"c"}, {"i"}, "if");
    when.attributes["then_branch"] = Attribute::make_graph(branch("Add"));
    when.attributes["else_branch"] = Attribute::make_graph(branch("Sub"));
    g.add_node("Mul", {"i", "r"}, {"y"}, "mul");
    g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
    g.outputs.push_back({"r", DType::kFloat32, Shape::unknown_rank()});
    Tensor c(DType::kBool, {});
    c.data<bool>()[0] = cond;
    std::vector<Value> feeds;
    feeds.emplace_back(random_tensor({2, 8}, 101));
    feeds.emplace_back(c);
    expect_graph_matches_ref(g, feeds, cond ? "then" : "else");
    auto cpu = make_cpu_device(1)->compile(g);
    ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
    ASSERT_TRUE((*cpu)->run(feeds).ok());
    std::map<std::string, std::string> kernel;
    for (const NodeKernel& k : (*cpu)->node_kernels()) kernel[k.node] = k.kernel;
    EXPECT_EQ(kernel["relu"], "native");
    EXPECT_EQ(kernel["mul"], "native");
    EXPECT_EQ(kernel["if"], "native");
    EXPECT_EQ(kernel["then_add"], "native");
    EXPECT_EQ(kernel["else_sub"], "native");
    EXPECT_TRUE((*cpu)->fallback_nodes().empty()) << ::testing::PrintToString((*cpu)->fallback_nodes());
  }
}

}  // namespace
}  // namespace pyflame_rt
