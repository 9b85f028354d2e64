// Regression tests for what the kernel_run fuzzer (fuzz/kernel_run_fuzz.cpp) found: one-node
// models whose shapes or attributes a kernel read without checking. Each runs the node on the
// reference device and on the CPU device; a failure must be an error naming the node, not a
// crash (these tests also run under ASan: `make sanitize-asan-cpp`).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "devices/cpu/cpu_device.h"
#include "devices/ref/kernel.h"
#include "devices/ref/kernel_util.h"
#include "devices/ref/ref_device.h"
#include "devices/run_interrupt.h"
#include "graph/checked_math.h"
#include "graph/logging.h"
#include "graph/memory_budget.h"
#include "tests/common/one_node_model.h"

namespace pyflame_rt {
namespace {

// `op` on runtime inputs `inputs`, with `n_out` outputs named out0.. (tests/common).
OneNode one_node(const std::string& op, std::vector<Tensor> inputs, size_t n_out, int64_t opset = 17) {
  return one_node_model(op, std::move(inputs), n_out, opset, "", "fuzzed");
}

std::vector<std::unique_ptr<Device>> both_devices() {
  std::vector<std::unique_ptr<Device>> d;
  d.push_back(make_ref_device());
  d.push_back(make_cpu_device(1));
  return d;
}

Expected<std::vector<Value>> run_on(Device& device, const OneNode& m) {
  ASSIGN_OR_RETURN(auto exe, device.compile(m.g));
  return exe->run(m.feeds);
}

// Both devices refuse the model's run with an error whose text contains `text`.
void expect_error_on_both_devices(const OneNode& m, const std::string& text) {
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_FALSE(out.ok()) << device->name();
    EXPECT_NE(out.status().to_string().find(text), std::string::npos) << device->name() << ": " << out.status().to_string();
  }
}

// A kernel sets every output it computes; a node may name fewer (Unique with only Y): the
// extra ones are dropped, not written past the outputs vector.
TEST(KernelRunFindingsTest, OutputsPastTheNodesCountAreDropped) {
  Node node;
  node.op_type = "Unique";
  std::vector<Value> outs(1);
  KernelContext ctx(node, 17, {}, &outs, nullptr);
  ctx.set_output(3, Tensor::scalar<int64_t>(7));
  ctx.set_output_value(1, Value(Tensor::scalar<int64_t>(8)));
  ctx.set_output(0, Tensor::scalar<int64_t>(9));
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].tensor.data<int64_t>()[0], 9);
}

TEST(KernelRunFindingsTest, UniqueWithOnlyItsFirstOutput) {
  OneNode m = one_node("Unique", {Tensor::from_vector<float>({5}, {3, 1, 3, 2, 1})}, 1);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    ASSERT_EQ(out->size(), 1u);
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{3})) << device->name();
    EXPECT_EQ(y.data<float>()[0], 1.f);
    EXPECT_EQ(y.data<float>()[1], 2.f);
    EXPECT_EQ(y.data<float>()[2], 3.f);
  }
}

// An integer ReduceMean over an empty axis was NaN in double, and converting it (or a sum past
// the type's range) to the integer type was undefined behaviour (UBSan, found by kernel_run; on
// x86 it gave INT_MIN). Integer reductions now run in the element type on both devices, exactly
// and wrapping as ONNX Runtime's do: a mean of nothing is 0, 200 + 200 in uint8 is 144, and an
// int64 sum past the limit wraps (the reference saturated it in double while the CPU device
// wrapped: a kernel_run mismatch).
TEST(KernelRunFindingsTest, IntegerReductionsOfNothingAndPastTheRangeAreDefined) {
  OneNode mean = one_node("ReduceMean", {Tensor(DType::kInt32, {0, 3})}, 1);
  mean.g.nodes[0].attributes["axes"] = Attribute::make_ints({0});
  OneNode sum = one_node("ReduceSum", {Tensor::from_vector<uint8_t>({2}, {200, 200})}, 1, 11);
  const int64_t max = std::numeric_limits<int64_t>::max();
  OneNode wide = one_node("ReduceSum", {Tensor::from_vector<int64_t>({3}, {max, 10, 1})}, 1, 11);
  for (auto& device : both_devices()) {
    auto m = run_on(*device, mean);
    ASSERT_TRUE(m.ok()) << device->name() << ": " << m.status().to_string();
    const Tensor& y = (*m)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{1, 3})) << device->name();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(y.data<int32_t>()[i], 0) << device->name();
    auto s = run_on(*device, sum);
    ASSERT_TRUE(s.ok()) << device->name() << ": " << s.status().to_string();
    EXPECT_EQ((*s)[0].tensor.data<uint8_t>()[0], 144) << device->name();
    auto w = run_on(*device, wide);
    ASSERT_TRUE(w.ok()) << device->name() << ": " << w.status().to_string();
    EXPECT_EQ((*w)[0].tensor.data<int64_t>()[0], std::numeric_limits<int64_t>::lowest() + 10) << device->name();
  }
}

// The same conversion in the elementwise path (Abs of uint64 max went through 2^64 as a double)
// and in the Random* ops' seed (a NaN, infinite or negative float seed): both undefined (UBSan,
// kernel_run). Abs saturates back to the max; a NaN seed is seed 0.
TEST(KernelRunFindingsTest, ElementwiseAndSeedConversionsAreDefined) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  OneNode abs = one_node("Abs", {Tensor::from_vector<uint64_t>({2}, {max, 5})}, 1);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, abs);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.data<uint64_t>()[0], max) << device->name();
    EXPECT_EQ((*out)[0].tensor.data<uint64_t>()[1], 5u) << device->name();
  }
  auto uniform = [](float seed) {
    OneNode m = one_node("RandomUniform", {}, 1);
    m.g.nodes[0].attributes["shape"] = Attribute::make_ints({8});
    m.g.nodes[0].attributes["seed"] = Attribute::make_float(seed);
    return m;
  };
  auto ref = make_ref_device();
  auto nan_seed = run_on(*ref, uniform(std::numeric_limits<float>::quiet_NaN()));
  auto zero_seed = run_on(*ref, uniform(0.f));
  ASSERT_TRUE(nan_seed.ok() && zero_seed.ok());
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ((*nan_seed)[0].tensor.data<float>()[i], (*zero_seed)[0].tensor.data<float>()[i]) << i;
  }
}

// Every other double-to-integer conversion of an unchecked value: an integer Pow's power (2^-1
// of 0 is infinite, a NaN exponent is NaN), a Cast of a float past int64's range, was
// undefined behaviour (UBSan, kernel_run: Pow of int32 with a NaN exponent). int64_from_double
// maps NaN to 0 and saturates at int64's limits; a narrower type wraps as before.
TEST(KernelRunFindingsTest, PowAndCastOfUnrepresentableValuesAreDefined) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t lo = std::numeric_limits<int64_t>::lowest(), hi = std::numeric_limits<int64_t>::max();
  OneNode pow = one_node("Pow", {Tensor::from_vector<int64_t>({4}, {0, 2, 3, -2}),
                                 Tensor::from_vector<float>({4}, {-1.f, nan, 2.f, 101.f})}, 1);
  OneNode cast = one_node("Cast", {Tensor::from_vector<float>({4}, {1e30f, -1e30f, nan, 3.75f})}, 1);
  cast.g.nodes[0].attributes["to"] = Attribute::make_int(static_cast<int64_t>(DType::kInt64));
  for (auto& device : both_devices()) {
    auto p = run_on(*device, pow);
    ASSERT_TRUE(p.ok()) << device->name() << ": " << p.status().to_string();
    const Tensor& y = (*p)[0].tensor;
    ASSERT_EQ(y.dtype(), DType::kInt64) << device->name();
    EXPECT_EQ(y.data<int64_t>()[0], hi) << device->name();
    EXPECT_EQ(y.data<int64_t>()[1], 0) << device->name();
    EXPECT_EQ(y.data<int64_t>()[2], 9) << device->name();
    EXPECT_EQ(y.data<int64_t>()[3], lo) << device->name();  // -2^101
    auto c = run_on(*device, cast);
    ASSERT_TRUE(c.ok()) << device->name() << ": " << c.status().to_string();
    const Tensor& z = (*c)[0].tensor;
    ASSERT_EQ(z.dtype(), DType::kInt64) << device->name();
    EXPECT_EQ(z.data<int64_t>()[0], hi) << device->name();
    EXPECT_EQ(z.data<int64_t>()[1], lo) << device->name();
    EXPECT_EQ(z.data<int64_t>()[2], 0) << device->name();
    EXPECT_EQ(z.data<int64_t>()[3], 3) << device->name();
  }
}

// Resize with a NaN or infinite scale: floor(dim * scale) converted to a size was undefined
// (the positive-scale check let NaN through). Both devices refuse it, naming the scale.
TEST(KernelRunFindingsTest, ResizeRefusesScalesThatAreNotFinite) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    OneNode m = one_node("Resize", {Tensor(DType::kFloat32, {1, 1, 2, 2}), Tensor(DType::kFloat32, {0}),
                                    Tensor::from_vector<float>({4}, {1.f, 1.f, bad, 2.f})}, 1, 13);
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_FALSE(out.ok()) << device->name() << " scale " << bad;
      EXPECT_NE(out.status().to_string().find("finite"), std::string::npos) << out.status().to_string();
    }
  }
}

// Runs `m` under a memory budget and a deadline, as a session does (RunInterruptScope).
Expected<std::vector<Value>> run_limited(Device& device, const OneNode& m, int64_t limit_mb, int64_t timeout_ms) {
  ASSIGN_OR_RETURN(auto exe, device.compile(m.g));
  RunContext ctx;
  if (limit_mb > 0) ctx.memory = std::make_shared<MemoryBudget>(limit_mb << 20, "SessionOptions.memory_limit_mb");
  if (timeout_ms > 0) {
    ctx.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    ctx.timeout_ms = timeout_ms;
  }
  RunInterruptScope scope(ctx);
  return exe->run(m.feeds, ctx);
}

// A window's size is a value: the kernel filled a std::vector<double> of that size before any
// tensor existed, outside memory_limit_mb (kernel_run: HannWindow of 2^31 took 4 GB past a
// 64 MB limit; a size past a vector's max_size threw std::length_error, uncaught). Its scratch
// is now charged (ScratchCharge): past the budget, or unrepresentable, the run fails cleanly.
TEST(KernelRunFindingsTest, ValueSizedScratchIsChargedToTheMemoryLimit) {
  for (const char* op : {"HannWindow", "HammingWindow", "BlackmanWindow"}) {
    OneNode big = one_node(op, {Tensor::scalar<int64_t>(int64_t{1} << 31)}, 1);
    OneNode huge = one_node(op, {Tensor::scalar<int64_t>(std::numeric_limits<int64_t>::max())}, 1);
    OneNode small = one_node(op, {Tensor::scalar<int64_t>(4)}, 1);
    for (auto& device : both_devices()) {
      auto b = run_limited(*device, big, 64, 0);
      ASSERT_FALSE(b.ok()) << op << " on " << device->name();
      EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted) << b.status().to_string();
      auto h = run_limited(*device, huge, 0, 0);  // no limit at all
      ASSERT_FALSE(h.ok()) << op << " on " << device->name();
      EXPECT_EQ(h.status().code(), StatusCode::kResourceExhausted) << h.status().to_string();
      auto s = run_limited(*device, small, 64, 0);
      ASSERT_TRUE(s.ok()) << op << " on " << device->name() << ": " << s.status().to_string();
      ASSERT_EQ((*s)[0].tensor.dims(), (Dims{4}));
      EXPECT_NEAR((*s)[0].tensor.data<float>()[0], std::string(op) == "HammingWindow" ? 4.0 / 46.0 : 0.0, 1e-5) << op;
    }
  }
}

// MelWeightMatrix with a tiny sample_rate: the band edges (dft_length * hz / rate) were past
// int64 (undefined conversion), their differences overflowed, and the loops walked from one
// edge to the other (2^63 steps). Edges now saturate and only the bins are walked.
TEST(KernelRunFindingsTest, MelWeightMatrixWithEdgesFarOutsideTheBins) {
  OneNode m = one_node("MelWeightMatrix", {Tensor::scalar<int64_t>(2), Tensor::scalar<int64_t>(8),
                                           Tensor::scalar<float>(1e-30f), Tensor::scalar<float>(0.f),
                                           Tensor::scalar<float>(100.f)}, 1);
  for (auto& device : both_devices()) {
    auto out = run_limited(*device, m, 64, 0);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& w = (*out)[0].tensor;
    ASSERT_EQ(w.dims(), (Dims{5, 2})) << device->name();
    for (int64_t i = 0; i < w.numel(); ++i) {
      EXPECT_TRUE(std::isfinite(w.data<float>()[i])) << i;
      EXPECT_GE(w.data<float>()[i], 0.f) << i;
      EXPECT_LE(w.data<float>()[i], 1.f) << i;
    }
  }
}

// A DFT's length is a value and the reference's transform is a direct O(n len) sum: a length
// of 2^20 over 2,048 samples ran for minutes, past the run's deadline. The transform checks
// the deadline as it goes.
TEST(KernelRunFindingsTest, LongDftStopsAtTheRunsDeadline) {
  OneNode m = one_node("DFT", {Tensor(DType::kFloat32, {1, 2048, 1}), Tensor::scalar<int64_t>(int64_t{1} << 20)}, 1);
  auto ref = make_ref_device();
  auto out = run_limited(*ref, m, 0, 50);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kDeadlineExceeded) << out.status().to_string();
}

// A pooling window's size is the model's: an LpPool the reference walked tap by tap ran 32 s
// past a 5 s deadline (kernel_run, stop 15). The reference's window walk (pooling and
// convolution) checks the deadline between output positions. 127 x 127 positions of 64 x 64
// taps: 0.43 s without the check, stopped at 50 ms with it.
TEST(KernelRunFindingsTest, LargePoolingWindowStopsAtTheRunsDeadline) {
  OneNode m = one_node("LpPool", {Tensor(DType::kFloat32, {1, 1, 64, 64})}, 1);
  m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({64, 64});
  m.g.nodes[0].attributes["pads"] = Attribute::make_ints({63, 63, 63, 63});
  auto ref = make_ref_device();
  auto out = run_limited(*ref, m, 0, 50);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kDeadlineExceeded) << out.status().to_string();
}

// LRN read N and C (dims 0 and 1) of any input: a scalar's read past its dims (UBSan,
// kernel_run, while constant folding). Ranks below 2 are refused on both devices.
TEST(KernelRunFindingsTest, LrnRefusesInputsWithoutNAndC) {
  for (Dims dims : {Dims{}, Dims{3}}) {
    OneNode m = one_node("LRN", {Tensor(DType::kFloat32, dims)}, 1);
    m.g.nodes[0].attributes["size"] = Attribute::make_int(1);
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_FALSE(out.ok()) << device->name() << " rank " << dims.size();
      EXPECT_NE(out.status().to_string().find("rank >= 2"), std::string::npos) << out.status().to_string();
    }
  }
  OneNode ok = one_node("LRN", {Tensor::from_vector<float>({1, 2}, {1.f, 2.f})}, 1);
  ok.g.nodes[0].attributes["size"] = Attribute::make_int(1);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, ok);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    // x / (1 + 1e-4 * x^2)^0.75
    EXPECT_NEAR((*out)[0].tensor.data<float>()[1], 2.0 / std::pow(1.0 + 1e-4 * 4.0, 0.75), 1e-5) << device->name();
  }
}

// A half-precision Cast to an integer type converted the float directly (bfloat16 -11.875 to
// uint8: undefined; UBSan, kernel_run). Half sources now take the float path: through int64,
// wrapped to the type (245, as float32 -11.875 gives), NaN 0.
TEST(KernelRunFindingsTest, HalfCastToIntegersIsDefined) {
  for (DType half : {DType::kFloat16, DType::kBFloat16}) {
    Tensor x(half, {3});
    const bool f16 = half == DType::kFloat16;
    x.data<uint16_t>()[0] = f16 ? 0xc9f0 : 0xc13e;  // -11.875
    x.data<uint16_t>()[1] = f16 ? 0x5cb0 : 0x4396;  // 300
    x.data<uint16_t>()[2] = f16 ? 0x7e00 : 0x7fc0;  // NaN
    OneNode m = one_node("Cast", {x}, 1);
    m.g.nodes[0].attributes["to"] = Attribute::make_int(static_cast<int64_t>(DType::kUInt8));
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
      const Tensor& y = (*out)[0].tensor;
      EXPECT_EQ(y.data<uint8_t>()[0], 245) << device->name() << " " << dtype_name(half);
      EXPECT_EQ(y.data<uint8_t>()[1], 44) << device->name() << " " << dtype_name(half);
      EXPECT_EQ(y.data<uint8_t>()[2], 0) << device->name() << " " << dtype_name(half);
    }
  }
}

// Integer arithmetic past the type's range was signed overflow, undefined (PRelu of int32
// INT_MIN by 7 on the reference, int64 MIN - 1 in the CPU device's arith_op; UBSan,
// kernel_run), and MIN / -1 or % -1 trapped (SIGFPE). Both devices wrap now, as ONNX Runtime
// and numpy give; x / -1 is the wrapped negation, x % -1 is 0.
template <typename T>
void expect_wrapping_arithmetic() {
  const T lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (auto& device : both_devices()) {
    auto run = [&](const std::string& op, std::vector<T> a, std::vector<T> b) {
      const int64_t n = static_cast<int64_t>(a.size());
      OneNode m = one_node(op, {Tensor::from_vector<T>({n}, a), Tensor::from_vector<T>({n}, b)}, 1);
      auto out = run_on(*device, m);
      EXPECT_TRUE(out.ok()) << op << " on " << device->name() << ": " << out.status().to_string();
      std::vector<T> y;
      if (out.ok()) y.assign((*out)[0].tensor.data<T>(), (*out)[0].tensor.data<T>() + n);
      return y;
    };
    const std::string on = device->name() + " " + dtype_name(DTypeOf<T>::value);
    EXPECT_EQ(run("PRelu", {lo, -3}, {7, 7}), (std::vector<T>{lo, -21})) << on;  // lo * 7 wraps to lo
    EXPECT_EQ(run("Add", {hi, 1}, {1, 1}), (std::vector<T>{lo, 2})) << on;
    EXPECT_EQ(run("Sub", {lo, 5}, {1, 7}), (std::vector<T>{hi, -2})) << on;
    EXPECT_EQ(run("Mul", {hi, 3}, {2, -4}), (std::vector<T>{-2, -12})) << on;
    EXPECT_EQ(run("Div", {lo, 7}, {-1, -1}), (std::vector<T>{lo, -7})) << on;
    EXPECT_EQ(run("Mod", {lo, 7}, {-1, -1}), (std::vector<T>{0, 0})) << on;
    EXPECT_EQ(run("Sum", {hi, 2}, {hi, 3}), (std::vector<T>{-2, 5})) << on;
  }
}

TEST(KernelRunFindingsTest, IntegerArithmeticWraps) {
  expect_wrapping_arithmetic<int32_t>();
  expect_wrapping_arithmetic<int64_t>();
  // A uint16 product past int's range after promotion: 65535 * 65535 wraps to 1.
  OneNode mul16 = one_node("Mul", {Tensor::from_vector<uint16_t>({1}, {65535}), Tensor::from_vector<uint16_t>({1}, {65535})}, 1);
  auto p = run_on(*make_ref_device(), mul16);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ((*p)[0].tensor.data<uint16_t>()[0], 1);
}

// ScatterElements with reduction add or mul on int64 combined in the type unchecked: 3 times
// -6.9e18 was signed overflow (UBSan, kernel_run stop 18 run 8). Both wrap, as Add and Mul do.
TEST(KernelRunFindingsTest, ScatterElementsReductionsOfIntegersWrap) {
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  struct Case {
    const char* reduction;
    std::vector<int64_t> updates, want;  // data [hi, 3], indices [0, 1]
  };
  for (const Case& c : {Case{"mul", {2, 4}, {-2, 12}}, Case{"add", {1, 4}, {lo, 7}}}) {
    const char* reduction = c.reduction;
    const std::vector<int64_t>& want = c.want;
    OneNode m = one_node("ScatterElements", {Tensor::from_vector<int64_t>({2}, {hi, 3}),
                                             Tensor::from_vector<int64_t>({2}, {0, 1}),
                                             Tensor::from_vector<int64_t>({2}, c.updates)},
                         1, 18);
    m.g.nodes[0].attributes["reduction"] = Attribute::make_string(reduction);
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_TRUE(out.ok()) << reduction << " on " << device->name() << ": " << out.status().to_string();
      const Tensor& y = (*out)[0].tensor;
      EXPECT_EQ(std::vector<int64_t>(y.data<int64_t>(), y.data<int64_t>() + 2), want) << reduction << " on "
                                                                                         << device->name();
    }
  }
}

// EyeLike's k is an attribute: k = 2^63 - 1 overflowed r + k (UBSan, kernel_run). A diagonal
// outside the matrix gives zeros; one inside is as before.
TEST(KernelRunFindingsTest, EyeLikeWithADiagonalOutsideTheMatrix) {
  for (int64_t k : {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(), int64_t{3}, int64_t{1}}) {
    OneNode m = one_node("EyeLike", {Tensor(DType::kFloat32, {2, 3})}, 1);
    m.g.nodes[0].attributes["k"] = Attribute::make_int(k);
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
      const float* y = (*out)[0].tensor.data<float>();
      for (int64_t i = 0; i < 6; ++i) {
        const bool one = k == 1 && (i == 1 || i == 5);  // (0, 1) and (1, 2)
        EXPECT_EQ(y[i], one ? 1.f : 0.f) << device->name() << " k " << k << " element " << i;
      }
    }
  }
}

// An integer Resize converted its rounded double directly: an extrapolation_value of 1.8e19
// (or a cubic overshoot) past the type's range was undefined (UBSan, kernel_run). It
// saturates, as the reference's other conversions do.
TEST(KernelRunFindingsTest, IntegerResizeSaturates) {
  // tf_crop_and_resize with a box past the input: every output is the extrapolation value.
  OneNode m = one_node("Resize", {Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {1, 2, 3, 4}),
                                  Tensor::from_vector<float>({8}, {0, 0, 2, 2, 1, 1, 3, 3}),
                                  Tensor(DType::kFloat32, {0}), Tensor::from_vector<int64_t>({4}, {1, 1, 2, 2})}, 1, 13);
  m.g.nodes[0].attributes["coordinate_transformation_mode"] = Attribute::make_string("tf_crop_and_resize");
  m.g.nodes[0].attributes["extrapolation_value"] = Attribute::make_float(1.8e19f);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.numel(), 4) << device->name();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(y.data<uint8_t>()[i], 255) << device->name() << " " << i;
  }
}

// Reshape's shape is a value: the product of its known dims overflowed (2^62 * 2^62; UBSan,
// kernel_run). It saturates: such a shape cannot match a real tensor, and a 0 among the
// dims still makes the product 0 (an empty tensor reshapes to it).
TEST(KernelRunFindingsTest, ReshapeToDimsWhoseProductPassesInt64) {
  const int64_t big = int64_t{1} << 62;
  OneNode bad = one_node("Reshape", {Tensor(DType::kFloat32, {2, 3}), Tensor::from_vector<int64_t>({3}, {big, big, -1})}, 1);
  OneNode empty = one_node("Reshape", {Tensor(DType::kFloat32, {2, 0}), Tensor::from_vector<int64_t>({3}, {big, big, 0})}, 1);
  empty.g.nodes[0].attributes["allowzero"] = Attribute::make_int(1);
  for (auto& device : both_devices()) {
    auto b = run_on(*device, bad);
    ASSERT_FALSE(b.ok()) << device->name();
    EXPECT_NE(b.status().to_string().find("cannot reshape"), std::string::npos) << b.status().to_string();
    auto e = run_on(*device, empty);
    ASSERT_TRUE(e.ok()) << device->name() << ": " << e.status().to_string();
    EXPECT_EQ((*e)[0].tensor.dims(), (Dims{big, big, 0})) << device->name();
  }
}

// ReverseSequence added its two axis attributes to check them: time_axis = 2^63 - 1 overflowed
// (UBSan, kernel_run). Refused as any other pair but (0, 1) and (1, 0).
TEST(KernelRunFindingsTest, ReverseSequenceWithAHugeTimeAxis) {
  OneNode m = one_node("ReverseSequence", {Tensor(DType::kFloat32, {2, 2}), Tensor::from_vector<int64_t>({2}, {1, 2})}, 1);
  m.g.nodes[0].attributes["batch_axis"] = Attribute::make_int(1);
  m.g.nodes[0].attributes["time_axis"] = Attribute::make_int(std::numeric_limits<int64_t>::max());
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_FALSE(out.ok()) << device->name();
    EXPECT_NE(out.status().to_string().find("batch_axis and time_axis"), std::string::npos) << out.status().to_string();
  }
}

// DepthToSpace/SpaceToDepth squared blocksize unchecked: 2^62 squared overflowed to 0 and
// was divided by (SIGFPE; kernel_run). A blocksize whose square or output dims pass int64 is
// refused, on empty inputs too (nothing else bounds it there).
TEST(KernelRunFindingsTest, DepthSpaceRefuseABlocksizeTooLargeForTheShape) {
  for (const char* op : {"DepthToSpace", "SpaceToDepth"}) {
    for (Dims dims : {Dims{4, 1, 1, 6}, Dims{0, 0, 0, 0}}) {
      OneNode m = one_node(op, {Tensor(DType::kFloat32, dims)}, 1, 13);
      m.g.nodes[0].attributes["blocksize"] = Attribute::make_int(int64_t{1} << 62);
      for (auto& device : both_devices()) {
        auto out = run_on(*device, m);
        ASSERT_FALSE(out.ok()) << op << " on " << device->name() << " " << dims_to_string(dims);
        EXPECT_NE(out.status().to_string().find("blocksize"), std::string::npos) << out.status().to_string();
      }
    }
  }
  OneNode ok = one_node("DepthToSpace", {Tensor::from_vector<float>({1, 4, 1, 1}, {1, 2, 3, 4})}, 1, 13);
  ok.g.nodes[0].attributes["blocksize"] = Attribute::make_int(2);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, ok);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.dims(), (Dims{1, 1, 2, 2})) << device->name();
  }
}

// The CPU device's pooled outputs were sized num_elements(dims) * dtype size unchecked: a
// ConstantOfShape of [2^62 + 1] float32 wrapped to a 4-byte buffer and the kernel wrote past
// it (heap corruption; kernel_run, UBSan build). Pooled buffers are sized by
// Tensor::allocation_bytes, which refuses what no buffer can hold, as Tensor's constructor.
TEST(KernelRunFindingsTest, OutputsTooLargeToAllocateFailTheRun) {
  for (int64_t n : {(int64_t{1} << 62) + 1, int64_t{1} << 62, std::numeric_limits<int64_t>::max()}) {
    OneNode m = one_node("ConstantOfShape", {Tensor::from_vector<int64_t>({1}, {n})}, 1);
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_FALSE(out.ok()) << device->name() << " " << n;
      EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << out.status().to_string();
    }
  }
  EXPECT_THROW(Tensor::allocation_bytes(DType::kFloat32, {(int64_t{1} << 62) + 1}), std::bad_alloc);
  EXPECT_EQ(Tensor::allocation_bytes(DType::kFloat32, {int64_t{1} << 62, 0}), 0u);
  EXPECT_EQ(Tensor::allocation_bytes(DType::kFloat32, {3, 5}), 60u);
}

// QLinearConv of an input with no channels and an int32 bias: the bias is scaled by x_scale,
// whose per-channel parameter then has no element, and the lookup divided by the length of 0
// (SIGFPE in the reference kernel, which the CPU device also runs for int8 inputs; kernel_run
// run 21, these shapes). It now fails by name, or runs, on both devices; a bias of another
// length than a per-channel w_scale is a named error, not a read past w_scale.
TEST(KernelRunFindingsTest, QLinearConvWithNoInputChannelsIsDefined) {
  OneNode empty = one_node("QLinearConv",
                           {Tensor(DType::kUInt8, {4, 0, 0, 0, 0}), Tensor(DType::kFloat32, {4, 0, 1, 1, 0}),
                            Tensor::scalar<uint8_t>(0), Tensor::scalar<int8_t>(3), Tensor::scalar<float>(0.5f),
                            Tensor::from_vector<uint8_t>({1, 1, 1, 1, 1}, {0}), Tensor::scalar<float>(1.f),
                            Tensor::scalar<int8_t>(0), Tensor::scalar<int32_t>(4)},
                           1);
  OneNode bias = one_node("QLinearConv",
                          {Tensor(DType::kUInt8, {1, 1, 2, 2}), Tensor::scalar<float>(1.f), Tensor::scalar<uint8_t>(0),
                           Tensor(DType::kUInt8, {2, 1, 1, 1}), Tensor::from_vector<float>({2}, {0.5f, 0.25f}),
                           Tensor::from_vector<uint8_t>({2}, {0, 0}), Tensor::scalar<float>(1.f),
                           Tensor::scalar<uint8_t>(0), Tensor::from_vector<int32_t>({3}, {4, 4, 4})},
                          1);
  auto ref = make_ref_device();
  for (auto* device : {ref.get()}) {
    auto out = run_on(*device, empty);
    if (!out.ok()) {
      EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().to_string();
    }
    auto bad = run_on(*device, bias);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().to_string().find("w_scale"), std::string::npos) << bad.status().to_string();
  }
}

// Size arithmetic on dims and attributes a model chooses overflowed int64 in the kernels
// (UBSan, kernel_run run 21 and stop 16: Conv's W channels x group, ConvTranspose's, MaxUnpool's
// and Pad's output sizes, Tile's dims, Split's and SplitToSequence's size sums, the RNNs'
// gates x hidden_size). Each is checked (graph/checked_math.h) and fails by name on both devices.
TEST(KernelRunFindingsTest, SizeArithmeticPastInt64IsANamedError) {
  const int64_t big = int64_t{1} << 62, max = std::numeric_limits<int64_t>::max();
  struct Case {
    OneNode m;
    std::string expected;  // part of the error
  };
  std::vector<Case> cases;
  {
    OneNode m = one_node("Conv", {Tensor(DType::kFloat32, {1, 4, 3, 3}), Tensor(DType::kFloat32, {0, big, 1, 1})}, 1);
    m.g.nodes[0].attributes["group"] = Attribute::make_int(4);
    cases.push_back({std::move(m), "more than int64 holds"});
  }
  {
    OneNode m = one_node("ConvTranspose", {Tensor(DType::kFloat32, {1, 1, 4}), Tensor(DType::kFloat32, {1, 1, 1})}, 1);
    m.g.nodes[0].attributes["strides"] = Attribute::make_ints({big});
    cases.push_back({std::move(m), "passes int64"});
  }
  // Conv's output size on the CPU device (stop 16: a dilation of 2^62 times a kernel of 3, a
  // pad of 2^63 - 1).
  for (const char* attr : {"dilations", "pads"}) {
    OneNode m = one_node("Conv", {Tensor(DType::kFloat32, {1, 1, 4, 4}), Tensor(DType::kFloat32, {1, 1, 3, 3})}, 1);
    m.g.nodes[0].attributes[attr] =
        Attribute::make_ints(std::string(attr) == "pads" ? std::vector<int64_t>{0, max, 0, 1} : std::vector<int64_t>{big, 1});
    cases.push_back({std::move(m), "int64"});
  }
  // The CPU device's own geometry for oneDNN overflowed too (stop 16): an output_padding or a
  // pad of 2^63 - 1.
  for (const char* attr : {"output_padding", "pads"}) {
    OneNode m = one_node("ConvTranspose", {Tensor(DType::kFloat32, {2, 2, 2, 3}), Tensor(DType::kFloat32, {2, 2, 2, 3})}, 1);
    m.g.nodes[0].attributes[attr] =
        Attribute::make_ints(std::string(attr) == "pads" ? std::vector<int64_t>{0, -max, 0, 0} : std::vector<int64_t>{max, 0});
    cases.push_back({std::move(m), "int64"});
  }
  {
    OneNode m = one_node("MaxUnpool", {Tensor(DType::kFloat32, {1, 1, 2, 2}), Tensor(DType::kInt64, {1, 1, 2, 2})}, 1, 11);
    m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({max, 1});
    cases.push_back({std::move(m), "passes int64"});
  }
  for (const char* op : {"MaxPool", "AveragePool"}) {
    OneNode m = one_node(op, {Tensor(DType::kFloat32, {1, 1, 4, 4})}, 1, 11);
    m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({2, 2});
    m.g.nodes[0].attributes["pads"] = Attribute::make_ints({big + 4, 0, big, 0});
    cases.push_back({std::move(m), "passes int64"});
  }
  cases.push_back({one_node("Tile", {Tensor(DType::kFloat32, {4, 3}), Tensor::from_vector<int64_t>({2}, {big, 1})}, 1),
                   "passes int64"});
  // Pad's output size on both devices (stop 16: an end pad of 2^63 - 1 plus a begin pad of 1).
  cases.push_back({one_node("Pad", {Tensor(DType::kFloat32, {3, 2}), Tensor::from_vector<int64_t>({4}, {1, 0, max, 0})}, 1),
                   "pass int64"});
  cases.push_back({one_node("Split", {Tensor(DType::kFloat32, {3}), Tensor::from_vector<int64_t>({3}, {max, max, 5})}, 3),
                   "does not divide"});
  {
    OneNode m = one_node("SplitToSequence", {Tensor(DType::kFloat32, {3}), Tensor::from_vector<int64_t>({2}, {max, max})}, 1);
    cases.push_back({std::move(m), "does not sum"});
    OneNode n = one_node("SplitToSequence",
                         {Tensor(DType::kFloat32, {3}), Tensor::from_vector<int64_t>({3}, {-1, 2, 2})}, 1);
    cases.push_back({std::move(n), "negative size"});
  }
  {
    OneNode m = one_node("GRU", {Tensor(DType::kFloat32, {1, 1, 2}), Tensor(DType::kFloat32, {1, 3, 2}),
                                 Tensor(DType::kFloat32, {1, 3, 1})}, 1);
    m.g.nodes[0].attributes["hidden_size"] = Attribute::make_int(max);
    cases.push_back({std::move(m), "hidden_size"});
  }
  for (const Case& c : cases) {
    const std::string& op = c.m.g.nodes[0].op_type;
    for (auto& device : both_devices()) {
      auto out = run_on(*device, c.m);
      ASSERT_FALSE(out.ok()) << op << " on " << device->name();
      if (device->name() == make_ref_device()->name()) {
        EXPECT_NE(out.status().to_string().find(c.expected), std::string::npos) << op << ": " << out.status().to_string();
      }
    }
  }
  // The CPU device's own ConvTranspose geometry (devices/cpu/conv_transpose_op.cpp) did the
  // same arithmetic unchecked (UBSan in the sanitizer run of stop 16, on the 2^62 stride
  // above). A stride of (2^64 + 2) / 3 over 4 input positions wraps to a spread of 2 and an
  // output of 3, which looks valid: now both devices name the overflow, and the CPU device
  // hands the node to the reference kernel for that reason (before, only because oneDNN then
  // refused the wrapped geometry; its log line said so).
  {
    OneNode m = one_node("ConvTranspose", {Tensor(DType::kFloat32, {1, 1, 4}), Tensor(DType::kFloat32, {1, 1, 1})}, 1);
    m.g.nodes[0].attributes["strides"] = Attribute::make_ints({int64_t{6148914691236517206}});
    std::vector<std::string> lines;
    const uint64_t sink = add_log_sink([&](LogSeverity, const std::string&, const std::string& line) { lines.push_back(line); });
    expect_error_on_both_devices(m, "passes int64");
    remove_log_sink(sink);
    bool named = false;
    for (const std::string& line : lines) named = named || line.find("the output size or pads pass int64") != std::string::npos;
    EXPECT_TRUE(named) << "the CPU device's fallback reason; log lines: " << lines.size();
  }
  // An empty input with an axis of 2^63 - 1 split in two: len + 1 and the running offset
  // stayed inside int64 only by luck before; the parts are 2^62 and 2^62 - 1.
  OneNode halves = one_node("Split", {Tensor(DType::kFloat32, {0, max})}, 2, 13);
  halves.g.nodes[0].attributes["axis"] = Attribute::make_int(1);
  for (auto& device : both_devices()) {
    auto h = run_on(*device, halves);
    ASSERT_TRUE(h.ok()) << device->name() << ": " << h.status().to_string();
    EXPECT_EQ((*h)[0].tensor.dims(), (Dims{0, big})) << device->name();
    EXPECT_EQ((*h)[1].tensor.dims(), (Dims{0, big - 1})) << device->name();
  }
  // The same ops at ordinary sizes still run: Tile [2, 1] x (2, 3) and Split [1, 2].
  OneNode tile = one_node("Tile", {Tensor::from_vector<float>({2, 1}, {1, 2}), Tensor::from_vector<int64_t>({2}, {2, 3})}, 1);
  OneNode split = one_node("Split", {Tensor::from_vector<float>({3}, {1, 2, 3}), Tensor::from_vector<int64_t>({2}, {1, 2})}, 2);
  for (auto& device : both_devices()) {
    auto t = run_on(*device, tile);
    ASSERT_TRUE(t.ok()) << device->name() << ": " << t.status().to_string();
    EXPECT_EQ((*t)[0].tensor.dims(), (Dims{4, 3}));
    EXPECT_EQ((*t)[0].tensor.data<float>()[3], 2.f);
    auto sp = run_on(*device, split);
    ASSERT_TRUE(sp.ok()) << device->name() << ": " << sp.status().to_string();
    EXPECT_EQ((*sp)[1].tensor.dims(), (Dims{2}));
    EXPECT_EQ((*sp)[1].tensor.data<float>()[1], 3.f);
  }
  CheckedInt64 ok = CheckedInt64(3) * 4 - 5, over = CheckedInt64(big) * 2 + 0, under = CheckedInt64(-max) - 2;
  EXPECT_FALSE(ok.overflowed());
  EXPECT_EQ(ok.value(), 7);
  EXPECT_TRUE(over.overflowed());
  EXPECT_TRUE((over - big).overflowed());  // stays flagged
  EXPECT_TRUE(under.overflowed());
}

// Floats a model gives where a kernel needs an integer were converted unchecked (UBSan,
// kernel_run run 21: OneHot's depth and float indices, GridSample's sample positions, Range's
// negative count on both devices, QMatMul's requantization of a NaN). Each is now defined:
// NaN and out-of-range values saturate or clamp (graph/checked_math.h) or fail by name.
TEST(KernelRunFindingsTest, FloatsUsedAsIntegersAreDefined) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto& device : both_devices()) {
    const std::string name = device->name();
    // OneHot: a NaN depth is 0, refused; a depth of 1e30 over no index is an empty output; a NaN
    // index matches no class.
    auto d = run_on(*device, one_node("OneHot", {Tensor::from_vector<int64_t>({1}, {0}), Tensor::scalar<float>(nan),
                                                 Tensor::from_vector<float>({2}, {0, 1})}, 1, 11));
    ASSERT_FALSE(d.ok()) << name;
    EXPECT_NE(d.status().to_string().find("depth must be positive"), std::string::npos) << d.status().to_string();
    auto e = run_on(*device, one_node("OneHot", {Tensor(DType::kInt64, {0}), Tensor::scalar<float>(1e30f),
                                                 Tensor::from_vector<float>({2}, {0, 1})}, 1, 11));
    ASSERT_TRUE(e.ok()) << name << ": " << e.status().to_string();
    EXPECT_EQ((*e)[0].tensor.dims(), (Dims{0, std::numeric_limits<int64_t>::max()})) << name;
    auto i = run_on(*device, one_node("OneHot", {Tensor::from_vector<float>({2}, {nan, 1}), Tensor::scalar<float>(3),
                                                 Tensor::from_vector<float>({2}, {0, 1})}, 1, 11));
    ASSERT_TRUE(i.ok()) << name << ": " << i.status().to_string();
    const float* oh = (*i)[0].tensor.data<float>();
    EXPECT_EQ(std::vector<float>(oh, oh + 6), (std::vector<float>{0, 0, 0, 0, 1, 0})) << name;  // NaN: no class
    // Range from 0 to -1e30 by 1: no element (the count, -1e30, was converted to int64).
    auto r = run_on(*device, one_node("Range", {Tensor::scalar<float>(0), Tensor::scalar<float>(-1e30f),
                                                Tensor::scalar<float>(1)}, 1, 11));
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().to_string();
    EXPECT_EQ((*r)[0].tensor.dims(), (Dims{0})) << name;
    // GridSample at positions 1e37 and NaN, zeros padding: 0 and NaN in every mode.
    for (const char* mode : {"bilinear", "bicubic", "nearest"}) {
      OneNode g = one_node("GridSample", {Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4}),
                                          Tensor::from_vector<float>({1, 1, 2, 2}, {1e37f, 0.f, nan, 0.f})}, 1, 16);
      g.g.nodes[0].attributes["mode"] = Attribute::make_string(mode);
      auto y = run_on(*device, g);
      ASSERT_TRUE(y.ok()) << name << " " << mode << ": " << y.status().to_string();
      EXPECT_EQ((*y)[0].tensor.data<float>()[0], 0.f) << name << " " << mode;
      if (std::string(mode) == "bilinear") {
        EXPECT_TRUE(std::isnan((*y)[0].tensor.data<float>()[1])) << name;
      }
      g.g.nodes[0].attributes["padding_mode"] = Attribute::make_string("mirror");
      auto bad = run_on(*device, g);
      ASSERT_FALSE(bad.ok()) << name;
      EXPECT_NE(bad.status().to_string().find("padding_mode"), std::string::npos) << bad.status().to_string();
    }
    // QMatMul requantizing with a NaN y_scale: the quantized type's lowest value, as QuantizeLinear.
    for (bool s8 : {false, true}) {
      OneNode q = one_node("QMatMul", {Tensor::from_vector<uint8_t>({1, 1}, {2}), Tensor::scalar<float>(1),
                                       Tensor::scalar<uint8_t>(0), Tensor::from_vector<uint8_t>({1, 1}, {3}),
                                       Tensor::scalar<float>(1), Tensor::scalar<uint8_t>(0), Tensor::scalar<float>(nan),
                                       s8 ? Tensor::scalar<int8_t>(0) : Tensor::scalar<uint8_t>(0)}, 1, 13);
      q.g.nodes[0].domain = "pyflame_rt";
      q.g.opset_imports["pyflame_rt"] = 1;
      auto y = run_on(*device, q);
      ASSERT_TRUE(y.ok()) << name << ": " << y.status().to_string();
      if (s8) EXPECT_EQ((*y)[0].tensor.data<int8_t>()[0], -128) << name;
      else EXPECT_EQ((*y)[0].tensor.data<uint8_t>()[0], 0) << name;
    }
  }
  EXPECT_EQ(index_from_double(std::nan(""), -1, 5), -1);
  EXPECT_EQ(index_from_double(1e300, -1, 5), 5);
  EXPECT_EQ(index_from_double(-1e300, -1, 5), -1);
  EXPECT_EQ(index_from_double(3.0, -1, 5), 3);
}

// Resize and Upsample with scales of 1e30 (sizes saturating at 2^63 - 1): the per-axis taps
// were built for every output position before the output existed (kernel_run timeouts, run
// 21). Both are charged to the run's budget first, and an empty output is not walked.
TEST(KernelRunFindingsTest, ResizeToHugeSizesFailsBeforeBuildingTaps) {
  OneNode big = one_node("Upsample", {Tensor::from_vector<float>({2}, {1, 2}), Tensor::from_vector<float>({1}, {1e30f})}, 1, 9);
  OneNode empty = one_node("Upsample", {Tensor(DType::kFloat32, {0, 2}), Tensor::from_vector<float>({2}, {1, 1e30f})}, 1, 9);
  for (auto& device : both_devices()) {
    auto b = run_limited(*device, big, 64, 0);
    ASSERT_FALSE(b.ok()) << device->name();
    EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted) << b.status().to_string();
    auto e = run_limited(*device, empty, 64, 0);
    ASSERT_TRUE(e.ok()) << device->name() << ": " << e.status().to_string();
    EXPECT_EQ((*e)[0].tensor.dims(), (Dims{0, std::numeric_limits<int64_t>::max()})) << device->name();
  }
}

// Activations with an infinite alpha: oneDNN computes alpha x on the x <= 0 side, so x = 0
// gave NaN on the CPU device where ONNX's x >= 0 branch gives 0 (Elu), and HardSigmoid's
// clamp of NaN differed (0 against the reference's 1); a Clip post-op with min above max made
// oneDNN throw while the CPU device probed FusedMatMul, outside any try (std::terminate at
// session creation). Such parameters now leave the node to the reference kernels.
TEST(KernelRunFindingsTest, ActivationsWithParametersOneDnnCannotTakeRunOnTheReference) {
  const float inf = std::numeric_limits<float>::infinity();
  OneNode elu = one_node("Elu", {Tensor::from_vector<float>({3}, {0.f, 2.f, -1.f})}, 1, 13);
  elu.g.nodes[0].attributes["alpha"] = Attribute::make_float(-inf);
  OneNode hs = one_node("HardSigmoid", {Tensor::from_vector<float>({2}, {0.f, 1.f})}, 1, 13);
  hs.g.nodes[0].attributes["alpha"] = Attribute::make_float(-inf);
  for (auto& device : both_devices()) {
    auto e = run_on(*device, elu);
    ASSERT_TRUE(e.ok()) << device->name() << ": " << e.status().to_string();
    const float* y = (*e)[0].tensor.data<float>();
    EXPECT_EQ(y[0], 0.f) << device->name();
    EXPECT_EQ(y[1], 2.f) << device->name();
    EXPECT_EQ(y[2], inf) << device->name();  // -inf x (e^-1 - 1)
    auto h = run_on(*device, hs);
    ASSERT_TRUE(h.ok()) << device->name() << ": " << h.status().to_string();
    EXPECT_EQ((*h)[0].tensor.data<float>()[0], 1.f) << device->name();  // clamp of -inf x 0 + 0.5 (NaN)
    EXPECT_EQ((*h)[0].tensor.data<float>()[1], 0.f) << device->name();
  }
  // FusedMatMul with a constant weight and Clip(-3.5, -5): the CPU device compiles it (on the
  // reference kernel) instead of terminating.
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports["pyflame_rt"] = 1;
  g.inputs.push_back({"a", DType::kFloat32, Shape::from_dims({1, 2})});
  g.initializers["w"] = Tensor::from_vector<float>({2, 1}, {1, 1});
  Node n;
  n.op_type = "FusedMatMul";
  n.domain = "pyflame_rt";
  n.name = "fuzzed";
  n.inputs = {"a", "w"};
  n.outputs = {"y"};
  n.attributes["activation"] = Attribute::make_string("Clip");
  n.attributes["activation_params"] = Attribute::make_floats({-3.5f, -5.f});
  g.nodes.push_back(n);
  g.outputs.push_back({"y", DType::kUndefined, Shape::unknown_rank()});
  auto cpu = make_cpu_device(1);
  auto exe = cpu->compile(g);
  ASSERT_TRUE(exe.ok()) << exe.status().to_string();
  auto out = (*exe)->run({Value(Tensor::from_vector<float>({1, 2}, {1, 2}))});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.dims(), (Dims{1, 1}));
}

// InstanceNormalization of constant planes with epsilon 1e-40: 1 / sqrt(epsilon) is 1e20, and
// the CPU device computed x a + (b - mean a), which cancels to 0 in float; the output is b.
TEST(KernelRunFindingsTest, InstanceNormOfConstantPlanesWithATinyEpsilonIsTheBias) {
  OneNode m = one_node("InstanceNormalization", {Tensor::from_vector<float>({3, 1, 1, 1}, {0.5f, -2.75f, -3.f}),
                                                 Tensor::from_vector<float>({1}, {1.f}),
                                                 Tensor::from_vector<float>({1}, {16.25f})}, 1, 13);
  m.g.nodes[0].attributes["epsilon"] = Attribute::make_float(1e-40f);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    for (int i = 0; i < 3; ++i) EXPECT_EQ((*out)[0].tensor.data<float>()[i], 16.25f) << device->name() << " " << i;
  }
}

// A MaxPool window that covers only padding held -inf on the reference and the float's lowest
// value on the CPU device (oneDNN), as in ONNX Runtime; the reference now agrees.
TEST(KernelRunFindingsTest, MaxPoolWindowOfOnlyPaddingHoldsTheLowestValue) {
  OneNode m = one_node("MaxPool", {Tensor::from_vector<float>({1, 1, 1, 2}, {-7, 5})}, 1, 12);
  m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({1, 2});
  m.g.nodes[0].attributes["pads"] = Attribute::make_ints({0, 0, 0, 2});
  m.g.nodes[0].attributes["strides"] = Attribute::make_ints({1, 2});
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{1, 1, 1, 2})) << device->name();
    EXPECT_EQ(y.data<float>()[0], 5.f) << device->name();
    EXPECT_EQ(y.data<float>()[1], std::numeric_limits<float>::lowest()) << device->name();
  }
}


// A Slice step of 2^63 - 1 (or -2^63) takes one element: its element count overflowed on the
// CPU device (UBSan, kernel_run stop 16 run 11), the reference counted it right.
TEST(KernelRunFindingsTest, SliceWithAHugeStepTakesOneElement) {
  const int64_t max = std::numeric_limits<int64_t>::max(), min = std::numeric_limits<int64_t>::min();
  struct Case {
    int64_t start, end, step;
    float want;
  };
  for (const Case& c : {Case{1, 5, max, 1.f}, Case{3, -6, min, 3.f}, Case{0, 5, max - 1, 0.f}}) {
    OneNode m = one_node("Slice", {Tensor::from_vector<float>({5}, {0, 1, 2, 3, 4}), Tensor::from_vector<int64_t>({1}, {c.start}),
                                   Tensor::from_vector<int64_t>({1}, {c.end}), Tensor::from_vector<int64_t>({1}, {0}),
                                   Tensor::from_vector<int64_t>({1}, {c.step})}, 1, 13);
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
      ASSERT_EQ((*out)[0].tensor.dims(), (Dims{1})) << device->name() << " step " << c.step;
      EXPECT_EQ((*out)[0].tensor.data<float>()[0], c.want) << device->name() << " step " << c.step;
    }
  }
}


// Einsum (kernel_run stop 16): "...ii->...i" on a rank-1 tensor named more labels than its rank
// beside the ellipsis, and the reference's expansion took a substring past the end (an
// uncaught std::out_of_range); now a named error on both devices.
TEST(KernelRunFindingsTest, EinsumTermWithMoreLabelsThanRankIsANamedError) {
  OneNode m = one_node("Einsum", {Tensor(DType::kFloat32, {5})}, 1);
  m.g.nodes[0].attributes["equation"] = Attribute::make_string("...ii->...i");
  expect_error_on_both_devices(m, "names 2 labels besides '...', the tensor has rank 1");
}


// Resize of an empty input to a non-empty output indexed the empty input (heap-buffer-overflow
// under ASan, kernel_run corpus replay, stop 16): a named error on both devices.
TEST(KernelRunFindingsTest, ResizeOfAnEmptyInputToANonEmptyOutputIsANamedError) {
  OneNode m = one_node("Resize", {Tensor(DType::kFloat32, {0}), Tensor(DType::kFloat32, {0}),
                                  Tensor(DType::kFloat32, {0}), Tensor::from_vector<int64_t>({1}, {3})}, 1, 17);
  m.g.nodes[0].inputs = {"in0", "", "", "in3"};  // sizes [3] for an input of [0]
  expect_error_on_both_devices(m, "is empty but output sizes");
}


// A backwards Slice whose start lies before the axis starts at its first element (ONNX's clamp
// of starts to [0, dim-1], what ONNX Runtime gives: [10] for [10, 11, 12][-9:-9:-8]); the
// reference clamped the start to -1 and gave nothing (kernel_run stop 16, a mismatch).
TEST(KernelRunFindingsTest, BackwardSliceStartingBeforeTheAxisTakesItsFirstElement) {
  OneNode m = one_node("Slice", {Tensor::from_vector<float>({3}, {10, 11, 12}), Tensor::from_vector<int64_t>({1}, {-9}),
                                 Tensor::from_vector<int64_t>({1}, {-9}), Tensor::from_vector<int64_t>({1}, {0}),
                                 Tensor::from_vector<int64_t>({1}, {-8})}, 1, 13);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    ASSERT_EQ((*out)[0].tensor.dims(), (Dims{1})) << device->name();
    EXPECT_EQ((*out)[0].tensor.data<float>()[0], 10.f) << device->name();
  }
}

// A kernel_shape that disagrees with W's spatial dims made the reference read W by the
// attribute's extent (ConvInteger with kernel_shape [2] and W [4, 4, 1]: outputs changed from
// run to run; kernel_run stop 16): a named error on both devices.
TEST(KernelRunFindingsTest, ConvKernelShapeOtherThanTheWeightsIsANamedError) {
  for (const char* op : {"Conv", "ConvInteger"}) {
    const bool integer = std::string(op) == "ConvInteger";
    OneNode m = one_node(op, {Tensor(integer ? DType::kInt8 : DType::kFloat32, {4, 4, 4}),
                              Tensor(integer ? DType::kUInt8 : DType::kFloat32, {4, 4, 1})}, 1);
    m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({2});
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_FALSE(out.ok()) << op << " on " << device->name();
      EXPECT_NE(out.status().to_string().find("does not match the weight's spatial dims [1]"), std::string::npos)
          << op << " on " << device->name() << ": " << out.status().to_string();
    }
  }
}

// ConvTranspose read W and the bias by kernel_shape and the output channels without checking
// either against them (kernel_shape [6], W [4, 1, 1]: outputs changed from run to run;
// kernel_run stop 17 run 1).
TEST(KernelRunFindingsTest, ConvTransposeKernelShapeOrBiasOtherThanTheWeightsIsANamedError) {
  {
    OneNode m = one_node("ConvTranspose", {Tensor(DType::kFloat32, {4, 4, 1}), Tensor(DType::kFloat32, {4, 1, 1})}, 1);
    m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({6});
    m.g.nodes[0].attributes["strides"] = Attribute::make_ints({6});
    expect_error_on_both_devices(m, "does not match the weight's spatial dims [1]");
  }
  {
    OneNode m = one_node("ConvTranspose", {Tensor(DType::kFloat32, {1, 4, 2}), Tensor(DType::kFloat32, {4, 1, 1}),
                                           Tensor(DType::kFloat32, {3})}, 1);
    expect_error_on_both_devices(m, "bias has 3 elements, expected 1");
  }
}

// ConvTranspose's output_shape was read per spatial dim without its length checked: two values
// on a 3-D input ([2, 2, 9, 2, 2]) read one past the list's end (ASan, replay of kernel_run's
// corpus under ASan, stop 20; the CPU device's geometry refused it and ran the reference
// kernel). Spatial dims only, or N and C as well, are accepted; any other length is an error.
TEST(KernelRunFindingsTest, ConvTransposeOutputShapeOfTheWrongLengthIsANamedError) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{big, big}, std::vector<int64_t>{4}}) {
    OneNode m = one_node("ConvTranspose", {Tensor(DType::kFloat32, {2, 2, 9, 2, 2}), Tensor(DType::kFloat32, {2, 2, 9, 2, 2})}, 1);
    m.g.nodes[0].attributes["output_shape"] = Attribute::make_ints(bad);
    expect_error_on_both_devices(m, "values, expected 3 (the spatial dims) or 5");
  }
  // The accepted lengths still run: spatial dims only, and with N and C in front.
  for (const std::vector<int64_t>& good : {std::vector<int64_t>{10, 3, 3}, std::vector<int64_t>{2, 2, 10, 3, 3}}) {
    OneNode m = one_node("ConvTranspose", {Tensor(DType::kFloat32, {2, 2, 9, 2, 2}), Tensor(DType::kFloat32, {2, 2, 9, 2, 2})}, 1);
    m.g.nodes[0].attributes["output_shape"] = Attribute::make_ints(good);
    for (auto& device : both_devices()) {
      auto out = run_on(*device, m);
      ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
      EXPECT_EQ((*out)[0].tensor.dims(), (Dims{2, 2, 10, 3, 3})) << device->name();
    }
  }
}

// The reference pools sized a per-plane scratch by the output plane before looking at the
// planes: LpPool of [2, 0, 1, 5] (no channels) with pads of 2^62 and a stride of 2^31 asked
// for 32 GiB (ASan out-of-memory, replay of kernel_run's corpus, stop 20). No planes: an
// empty output of the computed shape, at once.
TEST(KernelRunFindingsTest, PoolWithNoPlanesAllocatesNoScratch) {
  for (const char* op : {"LpPool", "MaxPool", "AveragePool"}) {
    OneNode m = one_node(op, {Tensor(DType::kFloat32, {2, 0, 1, 5})}, 1);
    m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({5, 2});
    m.g.nodes[0].attributes["pads"] = Attribute::make_ints({3, 3, 5, int64_t{1} << 62});
    m.g.nodes[0].attributes["strides"] = Attribute::make_ints({3, int64_t{1} << 31});
    auto ref = make_ref_device();
    const auto t0 = std::chrono::steady_clock::now();
    auto out = run_on(*ref, m);
    ASSERT_TRUE(out.ok()) << op << ": " << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.numel(), 0) << op;
    EXPECT_EQ((*out)[0].tensor.dim(1), 0) << op;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << op;
  }
}

// A charge of 2^63 bytes or more (a Resize's output of 2^61 floats: count x size, both the
// model's) read as a negative int64, passed the limit and left the budget at INT64_MIN, so the
// next charge overflowed (UBSan; kernel_run stop 17 run 3). It is refused like any excess.
TEST(KernelRunFindingsTest, ChargesPastInt64AreRefused) {
  auto budget = std::make_shared<MemoryBudget>(int64_t{64} << 20, "SessionOptions.memory_limit_mb");
  EXPECT_FALSE(budget->try_charge(size_t{1} << 63, "Resize's output"));
  EXPECT_FALSE(budget->try_charge(~size_t{0}));
  EXPECT_EQ(budget->used(), 0);
  EXPECT_NE(budget->message().find("9223372036854775808 more asked for (Resize's output)"), std::string::npos)
      << budget->message();
  EXPECT_TRUE(budget->try_charge(size_t{1} << 20));
  EXPECT_EQ(budget->used(), int64_t{1} << 20);
  // Through a scratch charge of the run's budget: std::bad_alloc, the budget unchanged.
  MemoryBudget::Scope scope(budget.get());
  EXPECT_THROW(ScratchCharge(int64_t{1} << 61, 4, "Resize's output"), std::bad_alloc);
  EXPECT_EQ(budget->used(), int64_t{1} << 20);
}

// MaxPool with storage_order 1 re-linearised a padding-only window's index (-1) column-major,
// dividing by each spatial dim: an empty one was a division by zero (UBSan; kernel_run stop 17
// run 4). Such a window holds T's lowest, its index is left as it is in row-major order.
TEST(KernelRunFindingsTest, ColumnMajorMaxPoolIndicesOfAnEmptyInputAreDefined) {
  OneNode m = one_node("MaxPool", {Tensor(DType::kFloat32, {1, 1, 0})}, 2);
  m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({1});
  m.g.nodes[0].attributes["pads"] = Attribute::make_ints({1, 1});
  m.g.nodes[0].attributes["storage_order"] = Attribute::make_int(1);
  auto out = run_on(*make_ref_device(), m);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ((*out)[0].tensor.dims(), (Dims{1, 1, 2}));
  EXPECT_EQ((*out)[0].tensor.data<float>()[0], std::numeric_limits<float>::lowest());
  EXPECT_EQ((*out)[1].tensor.data<int64_t>()[0], -1);
  EXPECT_EQ((*out)[1].tensor.data<int64_t>()[1], -1);
}

// A quantized value past a 64-bit type's range saturates at its limits: the limit as a double
// is 2^64 (2^63), and converting it was undefined (QLinearMatMul with a uint64 output; UBSan,
// kernel_run stop 17 run 6). NaN is the lowest value, as for the narrow types.
TEST(KernelRunFindingsTest, QuantizedValuesPastSixtyFourBitsSaturate) {
  EXPECT_EQ(saturate_quantized<uint64_t>(1.9e19), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(saturate_quantized<uint64_t>(1.8446744073709552e19), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(saturate_quantized<uint64_t>(-5.0), 0u);
  EXPECT_EQ(saturate_quantized<uint64_t>(12345.0), 12345u);
  EXPECT_EQ(saturate_quantized<int64_t>(9.3e18), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(saturate_quantized<int64_t>(-9.3e18), std::numeric_limits<int64_t>::lowest());
  EXPECT_EQ(saturate_quantized<int64_t>(std::nan("")), std::numeric_limits<int64_t>::lowest());
  EXPECT_EQ(saturate_quantized<uint8_t>(300.0), 255);
  EXPECT_EQ(saturate_quantized<uint8_t>(std::nan("")), 0);
  EXPECT_EQ(saturate_quantized<int8_t>(-200.0), -128);
  EXPECT_EQ(saturate_quantized<int8_t>(5.0), 5);
}

}  // namespace

// A broadcast's index map (8 bytes per output element) is built before the output: Expand of
// one float to [2^31] filled a 16 GB map past a 64 MB memory_limit_mb while constant folding
// (kernel_run stop 18, out of memory). The map is charged: such a run fails with the budget's
// error at once, and a map larger than the limit fails even where the output alone would fit.
TEST(KernelRunFindingsTest, BroadcastIndexMapsAreChargedToTheMemoryLimit) {
  OneNode huge = one_node("Expand", {Tensor::from_vector<float>({1}, {-2.625f}),
                                     Tensor::from_vector<int64_t>({1}, {int64_t{1} << 31})}, 1);
  for (auto& device : both_devices()) {
    auto h = run_limited(*device, huge, 64, 0);
    ASSERT_FALSE(h.ok()) << "Expand to [2^31] on " << device->name();
    EXPECT_EQ(h.status().code(), StatusCode::kResourceExhausted) << h.status().to_string();
  }
  // On the reference kernels: a 16 MB output fits 24 MB, its 32 MB map does not.
  OneNode mid = one_node("Expand", {Tensor::from_vector<float>({1}, {1.5f}),
                                    Tensor::from_vector<int64_t>({1}, {int64_t{1} << 22})}, 1);
  auto m = run_limited(*make_ref_device(), mid, 24, 0);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted) << m.status().to_string();
  // The map stays charged while the output is made beside it (since stop 19): 32 + 16 MB pass
  // 40 MB (before, the map's charge ended when it was returned: the two never counted together).
  auto both = run_limited(*make_ref_device(), mid, 40, 0);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().code(), StatusCode::kResourceExhausted) << both.status().to_string();
  auto ok = run_limited(*make_ref_device(), mid, 64, 0);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  ASSERT_EQ((*ok)[0].tensor.dims(), (Dims{int64_t{1} << 22}));
  EXPECT_EQ((*ok)[0].tensor.data<float>()[(int64_t{1} << 22) - 1], 1.5f);
}

// LayerNormalization's Scale and B are indexed by the normalized shape (X's dims from axis):
// an empty B of [0, 1, 7, 3] for [7, 4, 4, 1] was read out of bounds (kernel_run stop 18: the
// devices disagreed, and the reference with itself from run to run). Both must broadcast to
// that shape one way; the CPU device's native kernel takes only [D]-like ones (the others are
// the reference's).
TEST(KernelRunFindingsTest, LayerNormScaleOrBiasNotBroadcastingToTheNormalizedShapeIsANamedError) {
  auto filled = [](Dims dims, float base) {
    Tensor t(DType::kFloat32, std::move(dims));
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = base + 0.25f * static_cast<float>(i % 7);
    return t;
  };
  OneNode empty_bias = one_node("LayerNormalization", {filled({7, 4, 4, 1}, -1), filled({4, 4, 1}, 1),
                                                       Tensor(DType::kFloat32, {0, 1, 7, 3})}, 1);
  empty_bias.g.nodes[0].attributes["axis"] = Attribute::make_int(0);
  expect_error_on_both_devices(empty_bias, "shapes [0,1,7,3] and [7,4,4,1] cannot be broadcast");
  OneNode big_scale = one_node("LayerNormalization", {filled({2, 3}, -1), filled({2, 3}, 1)}, 1);
  expect_error_on_both_devices(big_scale, "Scale [2,3] does not broadcast to the normalized shape [3]");
  // One way broadcasting still runs: a scale of [4, 1] and a B of [1] over [7, 4, 4, 1] from axis 1.
  OneNode ok = one_node("LayerNormalization", {filled({7, 4, 4, 1}, -1), filled({4, 1}, 1), filled({1}, 0.5f)}, 1);
  ok.g.nodes[0].attributes["axis"] = Attribute::make_int(1);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, ok);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.dims(), (Dims{7, 4, 4, 1}));
  }
}

// RoiAlign's output size is the attributes' (output_height 2^62): the reference computed
// R * C * oh * ow unchecked (UBSan, kernel_run stop 18 run 5). Both devices now give the
// native kernel's error for a non-positive size and a named one past int64.
TEST(KernelRunFindingsTest, RoiAlignOutputSizeIsCheckedBeforeUse) {
  auto model = [](int64_t oh, int64_t ow) {
    OneNode m = one_node("RoiAlign", {Tensor(DType::kFloat64, {1, 2, 3, 2}), Tensor::from_vector<double>({1, 4}, {0, 0, 1, 1}),
                                      Tensor::from_vector<int64_t>({1}, {0})}, 1);
    m.g.nodes[0].attributes["output_height"] = Attribute::make_int(oh);
    m.g.nodes[0].attributes["output_width"] = Attribute::make_int(ow);
    return m;
  };
  expect_error_on_both_devices(model(int64_t{1} << 62, std::numeric_limits<int64_t>::min()),
                               "must be positive and sampling_ratio");
  expect_error_on_both_devices(model(int64_t{1} << 62, 4), "passes int64 elements");
  for (auto& device : both_devices()) {
    auto out = run_on(*device, model(2, 3));
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.dims(), (Dims{1, 2, 2, 3}));
  }
}

// exclude_outside=1 on a nearest Resize: the one tap of an output row past a 1-row input was
// clamped by the CPU device (0.375) and zeroed by the reference (0.0) (kernel_run stop 18
// run 10). Only cubic renormalises over taps outside; both devices refuse the rest, as ONNX
// Runtime does, and cubic still runs.
TEST(KernelRunFindingsTest, ExcludeOutsideNeedsCubicResize) {
  auto model = [](const std::string& mode) {
    OneNode m = one_node("Resize", {Tensor::from_vector<float>({1, 3}, {0.375f, 0.5f, 0.25f}),
                                    Tensor::from_vector<float>({3}, {0, 0, 1}), Tensor(DType::kFloat32, {0}),
                                    Tensor::from_vector<int64_t>({2}, {6, 3})}, 1);
    m.g.nodes[0].attributes["mode"] = Attribute::make_string(mode);
    m.g.nodes[0].attributes["nearest_mode"] = Attribute::make_string("ceil");
    m.g.nodes[0].attributes["exclude_outside"] = Attribute::make_int(4);
    return m;
  };
  expect_error_on_both_devices(model("nearest"), "exclude_outside=1 needs mode 'cubic'");
  expect_error_on_both_devices(model("linear"), "got mode 'linear'");
  for (auto& device : both_devices()) {
    auto out = run_on(*device, model("cubic"));
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{6, 3})) << device->name();
    for (int64_t r = 0; r < 6; ++r) EXPECT_FLOAT_EQ(y.data<float>()[r * 3], 0.375f) << device->name() << " row " << r;
  }
}

// A spatial_scale of -inf makes a roi corner 0 * -inf = NaN: both RoiAlign kernels converted
// the NaN sample position to int64 (UBSan, kernel_run stop 19; the native kernel then indexed
// the plane with it). A NaN position gives a NaN sample on both devices; a finite roi does not.
// On x86 the ordinary build happened to give NaN too: the UBSan builds (make sanitize-asan-cpp)
// are where this test fails without the fix.
TEST(KernelRunFindingsTest, RoiAlignOfANaNRoiIsNaN) {
  auto model = [](DType dtype, float scale) {
    Tensor x = convert_tensor(Tensor::from_vector<float>({1, 2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}), dtype);
    OneNode m = one_node("RoiAlign", {x, convert_tensor(Tensor::from_vector<float>({1, 4}, {0, 0, 5, 0}), dtype),
                                      Tensor::from_vector<int64_t>({1}, {0})}, 1);
    m.g.nodes[0].attributes["spatial_scale"] = Attribute::make_float(scale);
    m.g.nodes[0].attributes["output_height"] = Attribute::make_int(2);
    m.g.nodes[0].attributes["output_width"] = Attribute::make_int(2);
    return m;
  };
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (auto& device : both_devices()) {
      auto nan = run_on(*device, model(dtype, -std::numeric_limits<float>::infinity()));
      ASSERT_TRUE(nan.ok()) << device->name() << ": " << nan.status().to_string();
      const Tensor& y = (*nan)[0].tensor;
      ASSERT_EQ(y.dims(), (Dims{1, 2, 2, 2})) << device->name();
      for (int64_t i = 0; i < y.numel(); ++i) EXPECT_TRUE(std::isnan(y.value_as_double(i))) << device->name() << " " << i;
      auto finite = run_on(*device, model(dtype, 0.5f));
      ASSERT_TRUE(finite.ok()) << device->name() << ": " << finite.status().to_string();
      for (int64_t i = 0; i < 8; ++i) EXPECT_TRUE(std::isfinite((*finite)[0].tensor.value_as_double(i))) << device->name();
    }
  }
}

// RoiAlign over an input whose planes are empty (H = 0): the edge clamp made the sample index
// -1 and both kernels read before the plane (a different value each run: kernel_run stop 19).
// With regions to sample it is a named error on both devices; with none the output is empty.
TEST(KernelRunFindingsTest, RoiAlignOfAnEmptyPlaneIsANamedError) {
  auto model = [](int64_t regions, DType dtype) {
    std::vector<float> boxes;
    for (int64_t r = 0; r < regions; ++r) boxes.insert(boxes.end(), {0.875f, 0, 0.5f, 0.875f});
    return one_node("RoiAlign", {Tensor(dtype, {5, 6, 0, 8}), convert_tensor(Tensor::from_vector<float>({regions, 4}, boxes), dtype),
                                 Tensor::from_vector<int64_t>({regions}, std::vector<int64_t>(regions, 1))}, 1);
  };
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    expect_error_on_both_devices(model(1, dtype), "X [5,6,0,8] has no pixels (H or W is 0) but 1 region(s)");
    for (auto& device : both_devices()) {
      auto none = run_on(*device, model(0, dtype));
      ASSERT_TRUE(none.ok()) << device->name() << ": " << none.status().to_string();
      EXPECT_EQ((*none)[0].tensor.dims(), (Dims{0, 6, 1, 1})) << device->name();
    }
  }
}

}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// QuantizeLinear rounds x / scale half to even and then adds the zero point: oneDNN's reorder
// (the CPU device's kernel until stop 22) added it first, so with an odd zero point every tie
// came out one higher (-0.375 / 0.25 = -1.5, zp 3: 2 instead of 1). Ties both ways, saturation
// and NaN, on a plain input and on a convolution's output (a native layout).
TEST(KernelRunFindingsTest, QuantizeLinearRoundsBeforeItAddsTheZeroPoint) {
  const std::vector<float> x = {-0.375f, -0.125f, 0.125f, 0.375f, 0.625f, -3.f, 100.f, std::nanf(""),
                                0.874f, 1.125f, -0.625f, 63.625f, -63.875f, 0.f, 2.375f, -2.375f};
  const std::vector<uint8_t> want = {1, 3, 3, 5, 5, 0, 255, 0, 6, 7, 1, 255, 0, 3, 13, 0};
  auto with_params = [](OneNode m) {
    m.g.initializers["s"] = Tensor::from_vector<float>({}, {0.25f});
    m.g.initializers["z"] = Tensor::from_vector<uint8_t>({}, {3});
    m.g.nodes.back().inputs.insert(m.g.nodes.back().inputs.end(), {"s", "z"});
    return m;
  };
  const OneNode plain = with_params(one_node("QuantizeLinear", {Tensor::from_vector<float>({2, 8}, x)}, 1));
  // The same values through a depthwise 1x1 convolution that copies its 16 channels (each on
  // its own: a NaN stays in its channel): its output is in oneDNN's blocked layout, reordered
  // to f32 before the quantization.
  OneNode conv = with_params(one_node("QuantizeLinear", {Tensor::from_vector<float>({1, 16, 1, 1}, x)}, 1));
  conv.g.initializers["w"] = Tensor::from_vector<float>({16, 1, 1, 1}, std::vector<float>(16, 1.f));
  Node copy;
  copy.op_type = "Conv";
  copy.name = "copy";
  copy.attributes["group"] = Attribute::make_int(16);
  copy.inputs = {"in0", "w"};
  copy.outputs = {"copied"};
  conv.g.nodes.back().inputs[0] = "copied";
  conv.g.nodes.insert(conv.g.nodes.begin(), copy);
  for (const OneNode* m : std::vector<const OneNode*>{&plain, &conv}) {
    for (auto& device : both_devices()) {
      auto out = run_on(*device, *m);
      ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
      const Tensor& y = (*out)[0].tensor;
      ASSERT_EQ(y.dtype(), DType::kUInt8);
      ASSERT_EQ(y.numel(), 16);
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(y.data<uint8_t>()[i], want[i]) << device->name() << (m == &conv ? " after the conv" : "") << ": x = " << x[i];
      }
    }
  }
}

}  // namespace
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// A convolution whose padding makes an output row of 2^62 + 1: the CPU device's plan multiplied
// the output's height and width (UBSan: signed overflow) before any allocation could refuse
// it. Both devices refuse the run with an error naming the node and the shape.
TEST(KernelRunFindingsTest, ConvWhoseOutputPassesInt64IsANamedError) {
  OneNode m = one_node("Conv", {Tensor::from_vector<float>({1, 3, 3, 3}, std::vector<float>(27, 1.f))}, 1);
  m.g.initializers["w"] = Tensor::from_vector<float>({3, 3, 3, 3}, std::vector<float>(81, 0.5f));
  m.g.nodes.back().inputs.push_back("w");
  m.g.nodes.back().attributes["pads"] = Attribute::make_ints({0, 0, int64_t{1} << 62, 3});
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_FALSE(out.ok()) << device->name();
    const std::string error = out.status().to_string();
    EXPECT_NE(error.find("fuzzed"), std::string::npos) << error;
    EXPECT_NE(error.find("[1,3,4611686018427387905,4]"), std::string::npos) << error;
    EXPECT_NE(error.find("has more elements than int64 holds"), std::string::npos) << error;
  }
  // No image: the empty output, on both devices (the reference's im2col size had overflowed
  // first: 54 x (2^63 - 1), UBSan, kernel_run stop 22).
  OneNode empty = one_node("Conv", {Tensor::from_vector<float>({0, 3, 3, 3}, {})}, 1);
  empty.g.initializers["w"] = m.g.initializers["w"];
  empty.g.nodes.back().inputs.push_back("w");
  empty.g.nodes.back().attributes["pads"] = Attribute::make_ints({int64_t{1} << 62, int64_t{1} << 62, 6, 0});
  for (auto& device : both_devices()) {
    auto out = run_on(*device, empty);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    EXPECT_EQ((*out)[0].tensor.numel(), 0) << device->name();
    EXPECT_EQ((*out)[0].tensor.dim(0), 0) << device->name();
  }
}

}  // namespace
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// The fused ops' "activation" on an ONNX MatMul or Conv is no attribute of theirs: ignored on
// both devices (the CPU device applied it: 0.25 x -8.75 with activation LeakyRelu came out
// -0.021875 instead of -2.1875).
TEST(KernelRunFindingsTest, AnOnnxOpIgnoresTheFusedOpsActivation) {
  OneNode mm = one_node("MatMul", {Tensor::from_vector<float>({1, 1}, {0.25f})}, 1, 1);
  mm.g.initializers["w"] = Tensor::from_vector<float>({1, 1}, {-8.75f});
  mm.g.nodes.back().inputs.push_back("w");
  OneNode conv = one_node("Conv", {Tensor::from_vector<float>({1, 2, 1, 1}, {0.25f, -0.5f})}, 1);
  conv.g.initializers["w"] = Tensor::from_vector<float>({2, 2, 1, 1}, {-8.75f, 0.f, 0.f, 3.f});
  conv.g.nodes.back().inputs.push_back("w");
  for (OneNode* m : std::vector<OneNode*>{&mm, &conv}) {
    m->g.nodes.back().attributes["activation"] = Attribute::make_string("LeakyRelu");
    m->g.nodes.back().attributes["activation_params"] = Attribute::make_floats({0.5f});
  }
  for (auto& device : both_devices()) {
    auto y = run_on(*device, mm);
    ASSERT_TRUE(y.ok()) << device->name() << ": " << y.status().to_string();
    EXPECT_EQ((*y)[0].tensor.data<float>()[0], -2.1875f) << device->name();
    auto c = run_on(*device, conv);
    ASSERT_TRUE(c.ok()) << device->name() << ": " << c.status().to_string();
    EXPECT_EQ((*c)[0].tensor.data<float>()[0], -2.1875f) << device->name();
    EXPECT_EQ((*c)[0].tensor.data<float>()[1], -1.5f) << device->name();
  }
}

}  // namespace
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// BatchNormalization-7 with its optional outputs named "" is in inference mode on both
// devices: the reference trained (batch statistics) because the node had four output slots.
TEST(KernelRunFindingsTest, BatchNormSevenWithEmptyOptionalOutputsIsInference) {
  const std::vector<float> x = {0.75f, 1.f, 0.25f, 0.75f, 0.25f};
  OneNode m = one_node("BatchNormalization", {Tensor::from_vector<float>({1, 5}, x)}, 1, 7);
  const std::vector<float> scale = {1, 2, 3, 4, 5}, bias = {0.5f, -1, 0, 2, 7.375f};
  const std::vector<float> mean = {0, 0.5f, 1, -1, 0.25f}, var = {1, 4, 0.25f, 9, 2};
  m.g.initializers["s"] = Tensor::from_vector<float>({5}, scale);
  m.g.initializers["b"] = Tensor::from_vector<float>({5}, bias);
  m.g.initializers["m"] = Tensor::from_vector<float>({5}, mean);
  m.g.initializers["v"] = Tensor::from_vector<float>({5}, var);
  Node& n = m.g.nodes.back();
  for (const char* in : {"s", "b", "m", "v"}) n.inputs.push_back(in);
  n.outputs.resize(4);  // Y, then mean, var and saved_mean named "": not asked for
  n.attributes["epsilon"] = Attribute::make_float(0.125f);
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{1, 5})) << device->name();
    for (size_t c = 0; c < 5; ++c) {
      const float expected = scale[c] * (x[c] - mean[c]) / std::sqrt(var[c] + 0.125f) + bias[c];
      EXPECT_NEAR(y.data<float>()[c], expected, 1e-5f) << device->name() << " channel " << c;
    }
  }
}

// A ConvTranspose whose geometry passes int32 (a 9-tap kernel with dilation 2^31 spans 2^34,
// SAME_UPPER pads it by 2^33 on each side): oneDNN's kernels add these in int, and the CPU
// device gave 11.84 where the reference gives 3.66 (kernel_run, stop 23). Only tap 4 lands
// in the output (at o = i + 4 * 2^31 - 2^33 = i), so y[m][i] = sum over c of x[c][i] w[c][m][4].
TEST(KernelRunFindingsTest, ConvTransposeWithExtentsPastInt32MatchesTheReference) {
  std::vector<float> x(2 * 9), w(2 * 2 * 9);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * static_cast<float>(static_cast<int>(i % 7) - 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f * static_cast<float>(static_cast<int>(i % 5) - 2) + 0.125f;
  OneNode m = one_node("ConvTranspose", {Tensor::from_vector<float>({1, 2, 9}, x)}, 1, 14);
  m.g.initializers["w"] = Tensor::from_vector<float>({2, 2, 9}, w);
  m.g.nodes.back().inputs.push_back("w");
  m.g.nodes.back().attributes["auto_pad"] = Attribute::make_string("SAME_UPPER");
  m.g.nodes.back().attributes["dilations"] = Attribute::make_ints({int64_t{1} << 31});
  for (auto& device : both_devices()) {
    auto out = run_on(*device, m);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{1, 2, 9})) << device->name();
    for (int64_t mo = 0; mo < 2; ++mo) {
      for (int64_t i = 0; i < 9; ++i) {
        const float expected = x[i] * w[(0 * 2 + mo) * 9 + 4] + x[9 + i] * w[(1 * 2 + mo) * 9 + 4];
        EXPECT_FLOAT_EQ(y.data<float>()[mo * 9 + i], expected) << device->name() << " output " << mo << "," << i;
      }
    }
  }
}

// The Random* ops built both a normal and a uniform distribution from the node's two numbers,
// and Multinomial a discrete one from its logits, whatever they were: a stddev <= 0, low >
// high, NaN or infinite parameters or weights are undefined behaviour in <random>
// (libstdc++'s _GLIBCXX_ASSERTIONS abort; kernel_run stop 25, RandomUniform with high <= 0).
// Now: an error naming the values; a scale of 0 gives the mean; low == high gives low; a +inf
// logit takes every draw.
TEST(KernelRunFindingsTest, RandomOpsCheckTheirDistributionsParameters) {
  auto random = [](const char* op, const char* a_name, float a, const char* b_name, float b) {
    OneNode m = one_node(op, {}, 1);
    Node& n = m.g.nodes[0];
    n.attributes["shape"] = Attribute::make_ints({4});
    n.attributes["seed"] = Attribute::make_float(3.f);
    n.attributes[a_name] = Attribute::make_float(a);
    n.attributes[b_name] = Attribute::make_float(b);
    return m;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  expect_error_on_both_devices(random("RandomNormal", "mean", 0.f, "scale", -1.f), "scale >= 0, got mean 0, scale -1");
  expect_error_on_both_devices(random("RandomNormal", "mean", nan, "scale", 1.f), "must be finite");
  expect_error_on_both_devices(random("RandomUniform", "low", 2.f, "high", 1.f), "low <= high, got low 2, high 1");
  expect_error_on_both_devices(random("RandomUniform", "low", 0.f, "high", inf), "must be finite");
  // The finding's node: a valid range whose high is <= 0 (once an invalid normal's stddev).
  for (auto& device : both_devices()) {
    auto uniform = run_on(*device, random("RandomUniform", "low", -3.f, "high", -2.f));
    ASSERT_TRUE(uniform.ok()) << device->name() << ": " << uniform.status().to_string();
    for (int i = 0; i < 4; ++i) {
      float v = (*uniform)[0].tensor.data<float>()[i];
      EXPECT_TRUE(v >= -3.f && v <= -2.f) << device->name() << " " << v;
    }
    auto constant = run_on(*device, random("RandomNormal", "mean", 1.5f, "scale", 0.f));
    ASSERT_TRUE(constant.ok()) << device->name() << ": " << constant.status().to_string();
    for (int i = 0; i < 4; ++i) EXPECT_EQ((*constant)[0].tensor.data<float>()[i], 1.5f) << device->name();
  }
  auto multinomial = [](std::vector<float> logits, int64_t classes) {
    OneNode m = one_node("Multinomial", {Tensor::from_vector<float>({1, classes}, std::move(logits))}, 1);
    m.g.nodes[0].attributes["sample_size"] = Attribute::make_int(6);
    m.g.nodes[0].attributes["seed"] = Attribute::make_float(1.f);
    return m;
  };
  expect_error_on_both_devices(multinomial({0.f, nan, 1.f}, 3), "logit 1 of row 0 is NaN");
  expect_error_on_both_devices(multinomial({-inf, -inf}, 2), "every logit of row 0 is -inf");
  expect_error_on_both_devices(multinomial({}, 0), "no classes to draw from");
  for (auto& device : both_devices()) {
    auto out = run_on(*device, multinomial({0.f, inf, 5.f}, 3));
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{1, 6})) << device->name();
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y.value_as_double(i), 1.0) << device->name() << " draw " << i;
  }
}

}  // namespace
}  // namespace pyflame_rt
