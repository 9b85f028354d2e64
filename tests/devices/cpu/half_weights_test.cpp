// Half-precision weights on the CPU device (devices/cpu/half_weights.h): the quantizer's
// Cast(fp16/bf16 initializer -> float) in front of a Conv/Gemm weight input is absorbed, the
// native op runs on the half weights and agrees with the reference device running the Cast,
// and the program holds the weights half.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/cpu/half_weights.h"
#include "devices/ref/ref_device.h"
#include "graph/half.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

template <typename H>
Tensor to_half(const Tensor& f, DType dt) {
  Tensor h(dt, f.dims());
  for (int64_t i = 0; i < f.numel(); ++i) static_cast<uint16_t*>(h.raw_data())[i] = H::from_float(f.data<float>()[i]);
  return h;
}

Tensor halve(const Tensor& f, DType dt) {
  return dt == DType::kBFloat16 ? to_half<BFloat16>(f, dt) : to_half<Float16>(f, dt);
}

// x[1,16,12,12] -> Conv(3x3, Cast(w_half)) + bias -> Relu -> Flatten -> Gemm(Cast(g_half), transB).
Graph conv_gemm_graph(DType dt) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {{"x", DType::kFloat32, Shape::from_dims({1, 16, 12, 12})}};
  g.initializers["w_half"] = halve(random_tensor({32, 16, 3, 3}, 1), dt);
  g.initializers["b"] = random_tensor({32}, 2);
  g.initializers["g_half"] = halve(random_tensor({10, 32 * 12 * 12}, 3), dt);
  for (const char* name : {"w", "g"}) {
    Node& cast = g.add_node("Cast", {std::string(name) + "_half"}, {name});
    cast.attributes["to"] = Attribute::make_int(1);
  }
  Node& conv = g.add_node("Conv", {"x", "w", "b"}, {"c"});
  conv.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.add_node("Relu", {"c"}, {"r"});
  g.add_node("Flatten", {"r"}, {"f"});
  Node& gemm = g.add_node("Gemm", {"f", "g"}, {"y"});
  gemm.attributes["transB"] = Attribute::make_int(1);
  g.outputs = {{"y", DType::kFloat32, Shape::unknown_rank()}};
  return g;
}

class HalfWeightsTest : public ::testing::TestWithParam<DType> {};

TEST_P(HalfWeightsTest, ConvAndGemmRunNativeOnHalfWeights) {
  const DType dt = GetParam();
  Graph g = conv_gemm_graph(dt);
  auto cpu = make_cpu_device(2)->compile(g);
  auto ref = make_ref_device()->compile(g);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  std::vector<Value> feeds = {Value(random_tensor({1, 16, 12, 12}, 4))};
  auto a = (*cpu)->run(feeds);
  auto b = (*ref)->run(feeds);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  const Tensor& ta = (*a)[0].tensor;
  const Tensor& tb = (*b)[0].tensor;
  ASSERT_EQ(ta.dims(), tb.dims());
  double scale = 0, err = 0;
  for (int64_t i = 0; i < tb.numel(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(tb.data<float>()[i])));
    err = std::max(err, std::fabs(static_cast<double>(ta.data<float>()[i]) - tb.data<float>()[i]));
  }
  // bf16 kernels round the activations to bf16 too (8 bits of mantissa); f32 compute from half
  // storage is exact up to summation order, except for a 3x3 convolution in oneDNN's Winograd
  // layout (AVX-512), whose transformed weights are held as scaled fp16.
  const bool bf16_compute = cpu::compute_type(dt) == dnnl::memory::data_type::bf16;
  EXPECT_LT(err / scale, bf16_compute ? 2e-2 : 2e-3);
  auto* program = dynamic_cast<cpu::CpuProgram*>(cpu->get());
  ASSERT_NE(program, nullptr);
  // The Casts are gone (absorbed) and every node ran its native kernel.
  std::vector<std::string> ops;
  for (const auto& k : program->node_kernels()) {
    ops.push_back(k.op_type);
    EXPECT_EQ(k.kernel, "native") << k.node << " (" << k.op_type << ")";
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"Conv", "Relu", "Flatten", "Gemm"}));
  EXPECT_TRUE(program->fallback_nodes().empty());
  // The program holds the weights half: 2 bytes per weight, the f32 bias.
  std::string report = program->report_json();
  const size_t half_bytes = (32 * 16 * 9 + 10 * 32 * 12 * 12) * 2;
  EXPECT_NE(report.find("\"initializer_bytes\": " + std::to_string(half_bytes + 32 * 4)), std::string::npos) << report;
  EXPECT_NE(report.find(std::string("\"") + dtype_name(dt) + "\": " + std::to_string(half_bytes)), std::string::npos)
      << report;
}

TEST_P(HalfWeightsTest, ReferenceFallbackConvertsTheWeights) {
  // An empty batch goes to the reference kernels (cpu_program.cpp: has_empty_tensor), which
  // take one type: the native op's node gets its half weights converted to float for them.
  Graph g = conv_gemm_graph(GetParam());
  auto cpu = make_cpu_device(1)->compile(g);
  ASSERT_TRUE(cpu.ok());
  auto out = (*cpu)->run({Value(Tensor(DType::kFloat32, {0, 16, 12, 12}))});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.dims(), (Dims{0, 10}));
  EXPECT_EQ((*out)[0].tensor.dtype(), DType::kFloat32);
}

TEST_P(HalfWeightsTest, HalfToFloatMatchesTheScalarConversionForEveryPattern) {
  // All 65536 bit patterns, at an odd offset and length (vector body + scalar tail), in one call
  // large enough to split across threads.
  const DType dt = GetParam();
  std::vector<uint16_t> bits(65536 + 2);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i - 1);
  std::vector<float> got(bits.size(), 12345.f);
  cpu::half_to_float(bits.data() + 1, got.data() + 1, 65536, dt);
  EXPECT_EQ(got[0], 12345.f);  // nothing written outside the range
  EXPECT_EQ(got[65537], 12345.f);
  for (size_t i = 1; i <= 65536; ++i) {
    float want = dt == DType::kBFloat16 ? BFloat16::to_float(bits[i]) : Float16::to_float(bits[i]);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got[i])) << std::hex << bits[i];
    } else {
      ASSERT_EQ(float_bits(got[i]), float_bits(want)) << std::hex << "pattern 0x" << bits[i];
    }
  }
}

TEST_P(HalfWeightsTest, FloatToHalfRoundsLikeTheScalarConversion) {
  // Random floats over the half range, ties (values halfway between two halves), subnormal
  // halves, overflow to Inf and signed zeros: bit-identical to graph/half.h.
  const DType dt = GetParam();
  Tensor r = random_tensor({100003}, 11);
  std::vector<float> src(r.data<float>(), r.data<float>() + r.numel());
  for (size_t i = 0; i < src.size(); i += 7) src[i] *= 1000.f;
  for (size_t i = 3; i < src.size(); i += 11) src[i] *= 1e-6f;  // half subnormals
  for (uint32_t m = 0; m < 2048; ++m) {
    src.push_back(bits_float(0x3f800000u | (m << 12) | 0x1000u));  // f16 ties (bit 12 set, below it 0)
    src.push_back(bits_float(0x3f800000u | ((m & 127u) << 16) | 0x8000u));  // bf16 ties
  }
  for (float v : {0.f, -0.f, 65504.f, 65520.f, 1e9f, -1e9f, 5.96e-8f, 2.98e-8f}) src.push_back(v);
  std::vector<uint16_t> got(src.size());
  cpu::float_to_half(src.data(), got.data(), static_cast<int64_t>(src.size()), dt);
  for (size_t i = 0; i < src.size(); ++i) {
    uint16_t want = dt == DType::kBFloat16 ? BFloat16::from_float(src[i]) : Float16::from_float(src[i]);
    ASSERT_EQ(got[i], want) << "value " << src[i] << " at " << i;
  }
}

TEST_P(HalfWeightsTest, HalfPackedExpandsBlockedWeightsExactly) {
  // Blocked f32 packed weights whose values came from half ones: half storage of half the
  // bytes, expanded back bit for bit (padding zeros included) into the thread's scratch.
  const DType dt = GetParam();
  using dnnl::memory;
  Tensor w = halve(random_tensor({20, 12, 3, 3}, 5), dt);
  Tensor wf = cpu::to_float(w);
  memory plain(memory::desc({20, 12, 3, 3}, memory::data_type::f32, memory::format_tag::oihw), cpu::engine(),
               wf.raw_data());
  memory blocked(memory::desc({20, 12, 3, 3}, memory::data_type::f32, memory::format_tag::OIhw16i16o), cpu::engine());
  dnnl::reorder(plain, blocked).execute(cpu::thread_stream(), plain, blocked);
  cpu::thread_stream().wait();
  const size_t bytes = blocked.get_desc().get_size();
  ASSERT_EQ(bytes, static_cast<size_t>(32 * 16 * 9 * 4));  // padded to 16-channel blocks
  cpu::HalfPacked half(blocked, dt);
  EXPECT_EQ(half.half_bytes(), bytes / 2);
  memory expanded = half.expand();
  EXPECT_EQ(expanded.get_desc(), blocked.get_desc());
  EXPECT_EQ(std::memcmp(expanded.get_data_handle(), blocked.get_data_handle(), bytes), 0);
  EXPECT_EQ(expanded.get_data_handle(), cpu::weights_scratch(1));  // the thread's scratch
  memory copy = half.expand_copy();
  EXPECT_NE(copy.get_data_handle(), expanded.get_data_handle());
  EXPECT_EQ(std::memcmp(copy.get_data_handle(), blocked.get_data_handle(), bytes), 0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, HalfWeightsTest, ::testing::Values(DType::kFloat16, DType::kBFloat16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace pyflame_rt
