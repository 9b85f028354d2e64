// The native int8 convolution (devices/cpu/int8_conv.cpp: QLinearConv) against the reference
// kernel of the same node: power-of-two scales make the requantized values binary fractions
// (many exact ties) and weights within 7 bits keep the AVX2 kernel (no VNNI: weights halved
// above 7 bits) on the same integers; oneDNN's convolution breaks some ties the other way, so
// results agree within 1 step (a wrong zero point or bias would move them by many). Covers the activations' zero point folded into the
// bias (no padding: the packed weights then carry no zero-point compensation) and kept for
// oneDNN (padding).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "devices/cpu/cpu_program.h"
#include "devices/device.h"
#include "devices/packed_weights.h"
#include "devices/ref/ref_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

struct ConvCase {
  Dims x, w;
  std::vector<int64_t> pads;
  int64_t group = 1;
  uint8_t x_zp = 0, y_zp = 0;
  bool bias = false;
  int w_max = 63;  // weights in [-w_max - 1, w_max]
};

// Runs one QLinearConv natively and on the reference; returns the native program's packed
// weights (for the zero-point check).
PackedWeights check(const ConvCase& c, const std::string& label) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kUInt8, Shape::from_dims(c.x)});
  const int64_t m = c.w[0];
  Tensor ws(DType::kFloat32, {m});
  for (int64_t k = 0; k < m; ++k) ws.data<float>()[k] = std::ldexp(1.f, -static_cast<int>(k % 3) - 4);
  g.initializers["xs"] = Tensor::scalar<float>(0.5f);
  g.initializers["xz"] = Tensor::scalar<uint8_t>(c.x_zp);
  g.initializers["w"] = random_ints<int8_t>(c.w, -c.w_max - 1, c.w_max, 2);
  g.initializers["ws"] = ws;
  g.initializers["wz"] = Tensor::scalar<int8_t>(0);
  g.initializers["ys"] = Tensor::scalar<float>(2.f);
  g.initializers["yz"] = Tensor::scalar<uint8_t>(c.y_zp);
  Node n;
  n.op_type = "QLinearConv";
  n.name = "conv";
  n.inputs = {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz"};
  if (c.bias) {
    g.initializers["b"] = random_ints<int32_t>({m}, -3000, 3000, 3);
    n.inputs.push_back("b");
  }
  n.outputs = {"y"};
  n.attributes["pads"] = Attribute::make_ints(c.pads);
  n.attributes["group"] = Attribute::make_int(c.group);
  g.nodes.push_back(n);
  g.outputs.push_back({"y", DType::kUInt8, Shape::unknown_rank()});
  std::vector<Value> feeds = {Value(random_ints<uint8_t>(c.x, 0, 255, 1))};
  auto cpu = make_cpu_device(1)->compile(g);
  auto ref = make_ref_device()->compile(g);
  EXPECT_TRUE(cpu.ok() && ref.ok()) << label;
  if (!cpu.ok() || !ref.ok()) return {};
  auto a = (*cpu)->run(feeds);
  auto b = (*ref)->run(feeds);
  EXPECT_TRUE(a.ok() && b.ok()) << label;
  if (!a.ok() || !b.ok()) return {};
  const Tensor& x = (*a)[0].tensor;
  const Tensor& y = (*b)[0].tensor;
  EXPECT_EQ(x.dims(), y.dims()) << label;
  int64_t off = 0, worst = 0;
  for (int64_t i = 0; i < y.numel() && x.dims() == y.dims(); ++i) {
    int64_t d = std::abs(int(x.data<uint8_t>()[i]) - int(y.data<uint8_t>()[i]));
    off += d != 0;
    worst = std::max(worst, d);
  }
  EXPECT_LE(worst, 1) << label;
  EXPECT_LE(off * 50, y.numel()) << label << ": " << off << " of " << y.numel() << " differ";
  auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
  EXPECT_NE(program, nullptr);
  PackedWeights packed;
  if (!program) return packed;
  for (const auto& [node, native] : program->native_by_node()) EXPECT_TRUE(native) << label << ": " << node;
  EXPECT_TRUE(program->export_packed(&packed).ok());
  return packed;
}

// Whether oneDNN appended a compensation for the activations' zero point to the weights.
bool has_zero_point_compensation(const PackedWeights& p) {
  EXPECT_EQ(p.blobs.size(), 1u);
  if (p.blobs.size() != 1 || p.blobs[0].desc.size() != sizeof(dnnl_memory_desc_t)) return false;
  dnnl_memory_desc_t md;
  std::memcpy(&md, p.blobs[0].desc.data(), sizeof md);
  return (md.extra.flags & dnnl_memory_extra_flag_compensation_conv_asymmetric_src) != 0;
}

TEST(Int8ConvTest, ZeroPointOfAnUnpaddedConvIsFoldedIntoTheBias) {
  ConvCase c{{1, 24, 9, 9}, {40, 24, 1, 1}, {0, 0, 0, 0}, 1, 131, 7, true};
  EXPECT_FALSE(has_zero_point_compensation(check(c, "1x1, zero point 131, bias")));
  c.bias = false;
  EXPECT_FALSE(has_zero_point_compensation(check(c, "1x1, zero point 131, no bias")));
  ConvCase k3{{1, 8, 10, 10}, {16, 8, 3, 3}, {0, 0, 0, 0}, 1, 200, 0, true};
  EXPECT_FALSE(has_zero_point_compensation(check(k3, "3x3 unpadded, zero point 200")));
}

TEST(Int8ConvTest, ZeroPointOfAPaddedConvStaysWithOneDnn) {
  // Padding reads the zero point (a real 0) at the border: not a per-channel constant.
  ConvCase c{{1, 8, 10, 10}, {16, 8, 3, 3}, {1, 1, 1, 1}, 1, 131, 5, true};
  EXPECT_TRUE(has_zero_point_compensation(check(c, "3x3 padded, zero point 131")));
  ConvCase dw{{1, 16, 12, 12}, {16, 1, 3, 3}, {1, 1, 1, 1}, 16, 0, 3, true};
  check(dw, "depthwise padded, zero point 0");
}

TEST(Int8ConvTest, DepthwiseKeepsFullWeightsWithoutVnni) {
  // Without VNNI the other convolutions halve weights above 7 bits (results move by a few
  // steps); a depthwise one multiplies in int32 and keeps all 8 (run this under
  // ONEDNN_MAX_CPU_ISA=AVX2 to see the difference).
  ConvCase dw{{1, 24, 14, 14}, {24, 1, 3, 3}, {1, 1, 1, 1}, 24, 0, 3, true, 127};
  check(dw, "depthwise, 8-bit weights");
  ConvCase strided = dw;
  strided.x = {1, 24, 15, 15};
  check(strided, "depthwise, 8-bit weights, odd size");
}

}  // namespace
}  // namespace pyflame_rt
