// Deadlines inside reference kernels (issue 14, stop 16): a kernel whose work a model's
// attributes or values size past its tensors (a GEMM of 10^10 multiply-adds on a few MB, a
// window, a sampling ratio, boxes squared, a rank-16 cubic Resize of one element) reads the
// run's deadline and terminate flag inside its loops (InterruptPoll, devices/run_interrupt.h).
//
// Each case is a one-node model that runs for seconds to hours without the check (figures in
// docs/reliability.md, section "Deadlines inside reference kernels (stop 16)", measured with
// PFRT_MEASURE_CAP_S, below). Both devices check the deadline before each node, not after the
// last: without the check inside the kernel the run ends OK, however late. With a 50 ms
// deadline it must fail with kDeadlineExceeded, within a generous bound (kStoppedWithin). The
// CPU device runs the same nodes on the reference kernel (no native kernel for the op or the
// dtype); the tests check that it did.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <thread>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/native_op.h"
#include "devices/ref/ref_device.h"
#include "devices/run_interrupt.h"
#include "tests/common/one_node_model.h"
#include "tests/common/timed_run.h"

namespace pyflame_rt {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kDeadlineMs = 50;
// Far above 50 ms plus one poll interval (~65,000 steps) even under ASan on a shared machine,
// far below what each case runs for without the check.
constexpr auto kStoppedWithin = std::chrono::seconds(3);

OneNode one_node(const std::string& op, std::vector<Tensor> inputs, size_t n_out, int64_t opset = 17,
                 const std::string& domain = "") {
  return one_node_model(op, std::move(inputs), n_out, opset, domain, "long");
}

// A tensor whose element i is f(i) (zeros would let some kernels skip their work).
template <typename T>
Tensor filled(DType dtype, Dims dims, const std::function<double(int64_t)>& f) {
  Tensor t(dtype, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(f(i));
  return t;
}
Tensor ones_f32(Dims dims) { return filled<float>(DType::kFloat32, std::move(dims), [](int64_t) { return 1.0; }); }
Tensor ones_f64(Dims dims) { return filled<double>(DType::kFloat64, std::move(dims), [](int64_t) { return 1.0; }); }

struct Outcome {
  Status status;
  Clock::duration elapsed{};
  bool ran_reference = false;  // CPU device: the node ran on the reference kernel
};

// Compiles `m`, then runs it under `ctx` as a session does (RunInterruptScope), timing the run.
Outcome run_with(Device& device, const OneNode& m, const RunContext& ctx) {
  Outcome o;
  auto exe = device.compile(m.g);
  if (!exe.ok()) {
    o.status = exe.status();
    return o;
  }
  const uint64_t before = cpu::reference_runs_on_this_thread();
  TimedRun run = timed_run(**exe, m.feeds, ctx);
  o.status = run.status;
  o.elapsed = run.elapsed;
  o.ran_reference = cpu::reference_runs_on_this_thread() > before;
  return o;
}

Outcome run_with_deadline(Device& device, const OneNode& m, int64_t timeout_ms) {
  RunContext ctx;
  ctx.deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  ctx.timeout_ms = timeout_ms;
  return run_with(device, m, ctx);
}

std::vector<std::unique_ptr<Device>> both_devices() {
  std::vector<std::unique_ptr<Device>> d;
  d.push_back(make_ref_device());
  d.push_back(make_cpu_device(1));
  return d;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The node stops at the deadline on the reference device and, when `on_cpu`, on the CPU device
// (which must run it on the reference kernel).
// With PFRT_MEASURE_CAP_S=N set, each case first runs on the reference device with an N-second
// deadline instead, and prints how long it ran ("> N s" when the cap stopped it): the figures of
// docs/reliability.md's table.
void expect_stops(const std::string& what, const OneNode& m, bool on_cpu = true) {
  if (const char* cap = std::getenv("PFRT_MEASURE_CAP_S")) {
    Outcome o = run_with_deadline(*make_ref_device(), m, std::atoll(cap) * 1000);
    std::cout << "[measure] " << what << " with no deadline of its own: " << (o.status.ok() ? "" : "> ")
              << ms(o.elapsed) << " ms" << (o.status.ok() ? "" : " (cut by the cap)") << std::endl;
  }
  std::vector<std::unique_ptr<Device>> devices = both_devices();
  if (!on_cpu) devices.pop_back();
  for (auto& device : devices) {
    Outcome o = run_with_deadline(*device, m, kDeadlineMs);
    SCOPED_TRACE(what + " on " + device->name());
    ASSERT_FALSE(o.status.ok()) << "ran to the end in " << ms(o.elapsed) << " ms";
    EXPECT_EQ(o.status.code(), StatusCode::kDeadlineExceeded) << o.status.to_string();
    EXPECT_NE(o.status.to_string().find("RunOptions.timeout_ms is 50 ms"), std::string::npos) << o.status.to_string();
    EXPECT_LT(o.elapsed, kStoppedWithin) << ms(o.elapsed) << " ms";
    if (device->name() != "ref") {
      EXPECT_TRUE(o.ran_reference) << "the CPU device ran the node natively";
    }
    if (std::getenv("PFRT_MEASURE_CAP_S")) {
      std::cout << "[measure] " << what << " on " << device->name() << " stopped after " << ms(o.elapsed)
                << " ms (deadline " << kDeadlineMs << " ms)" << std::endl;
    }
  }
}

// --- The reference GEMM (MatMul, Gemm, Conv's im2col product, ConvTranspose) ---------------

// 2 x 1024^3 multiply-adds on 16 MB operands (float64: the CPU device's native GEMM is float32).
TEST(RefDeadlineTest, GemmStopsInsideTheProduct) {
  const int64_t n = 1024;
  auto f = [](int64_t i) { return 1.0 + static_cast<double>(i % 7); };
  expect_stops("MatMul", one_node("MatMul", {filled<double>(DType::kFloat64, {2, n, n}, f),
                                             filled<double>(DType::kFloat64, {2, n, n}, f)}, 1));
  OneNode gemm = one_node("Gemm", {filled<double>(DType::kFloat64, {n, 2 * n}, f),
                                   filled<double>(DType::kFloat64, {n, 2 * n}, f)}, 1);
  gemm.g.nodes[0].attributes["transB"] = Attribute::make_int(1);
  expect_stops("Gemm", gemm);
}

// Conv: 1024 x 1024 x 2304 multiply-adds (2.4 x 10^9) on 2 MB and 19 MB (float64: the CPU
// device's native Conv is float32); ConvTranspose: 576 x 1024 x 2048 (1.2 x 10^9) on 16 MB and
// 9.4 MB, then its col2im walk.
TEST(RefDeadlineTest, ConvAndConvTransposeStopInsideTheKernel) {
  auto f = [](int64_t i) { return 0.5 + static_cast<double>(i % 5); };
  expect_stops("Conv", one_node("Conv", {filled<double>(DType::kFloat64, {1, 256, 32, 32}, f),
                                         filled<double>(DType::kFloat64, {1024, 256, 3, 3}, f)}, 1));
  expect_stops("ConvTranspose",
               one_node("ConvTranspose", {filled<double>(DType::kFloat64, {1, 2048, 32, 32}, f),
                                          filled<double>(DType::kFloat64, {2048, 64, 3, 3}, f)}, 1));
}

// --- Work a window, a ratio or the labels size --------------------------------------------

// One output position owns a 65536 x 65536 window of a 1 x 1 input (pads): 4.3 x 10^9 taps at
// one output position, which the old check between output positions never interrupted; the
// tap walk then polled the deadline, but still walked every padding tap (seconds without a
// deadline). Pooling reads nothing from padding, so the walk now visits only the taps inside
// the input (the padding's share of AveragePool's count_include_pad divisor is computed): the
// node ends at once with the right value, on both devices, float64 (the reference kernel) and
// float32 (the CPU device's own pooling where it has one).
TEST(RefDeadlineTest, OneHugePoolingWindowOfPaddingIsNotWalked) {
  struct Case {
    const char* op;
    int64_t include_pad;
    double want;
  };
  const double taps = 65536.0 * 65536.0;
  for (const Case& c : {Case{"LpPool", 0, 3.0}, Case{"AveragePool", 0, 3.0}, Case{"AveragePool", 1, 3.0 / taps},
                        Case{"MaxPool", 0, 3.0}}) {
    for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
      Tensor x = dtype == DType::kFloat64 ? Tensor::from_vector<double>({1, 1, 1, 1}, {-3.0})
                                          : Tensor::from_vector<float>({1, 1, 1, 1}, {-3.0f});
      if (std::string(c.op) != "LpPool") {
        x = dtype == DType::kFloat64 ? Tensor::from_vector<double>({1, 1, 1, 1}, {3.0})
                                     : Tensor::from_vector<float>({1, 1, 1, 1}, {3.0f});
      }
      OneNode m = one_node(c.op, {x}, 1);
      m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({65536, 65536});
      m.g.nodes[0].attributes["pads"] = Attribute::make_ints({65535, 65535, 0, 0});
      if (std::string(c.op) == "AveragePool") {
        m.g.nodes[0].attributes["count_include_pad"] = Attribute::make_int(c.include_pad);
      }
      for (auto& device : both_devices()) {
        SCOPED_TRACE(std::string(c.op) + " count_include_pad " + std::to_string(c.include_pad) + " " +
                     dtype_name(dtype) + " on " + device->name());
        auto exe = device->compile(m.g);
        ASSERT_TRUE(exe.ok()) << exe.status().to_string();
        const auto start = Clock::now();
        auto out = (*exe)->run(m.feeds, RunContext{});
        const auto elapsed = Clock::now() - start;
        ASSERT_TRUE(out.ok()) << out.status().to_string();
        const Tensor& y = (*out)[0].tensor;
        ASSERT_EQ(y.dims(), (Dims{1, 1, 1, 1}));
        EXPECT_NEAR(y.value_as_double(0), c.want, std::abs(c.want) * 1e-6);
        EXPECT_LT(elapsed, std::chrono::seconds(1)) << ms(elapsed) << " ms: the padding was walked";
      }
    }
  }
}

// The taps inside the input are what a window reads: 1023 x 1023 output positions of a
// 512 x 512 input padded by 511 on every side, each reading up to 512 x 512 taps (6.8 x 10^10).
TEST(RefDeadlineTest, PoolingWindowsOverTheWholeInputStop) {
  for (const char* op : {"LpPool", "AveragePool", "MaxPool"}) {
    OneNode m = one_node(op, {ones_f64({1, 1, 512, 512})}, 1);
    m.g.nodes[0].attributes["kernel_shape"] = Attribute::make_ints({512, 512});
    m.g.nodes[0].attributes["pads"] = Attribute::make_ints({511, 511, 511, 511});
    // MaxPool: float64 with these pads is the reference kernel's on the CPU device too.
    expect_stops(op, m, std::string(op) != "MaxPool");
  }
}

// "i,j->": 10^6 x 10^6 steps on two 4 MB vectors.
TEST(RefDeadlineTest, EinsumOverLabelsNoInputBoundsStops) {
  OneNode m = one_node("Einsum", {ones_f32({1000000}), ones_f32({1000000})}, 1, 12);
  m.g.nodes[0].attributes["equation"] = Attribute::make_string("i,j->");
  expect_stops("Einsum", m);
}

// sampling_ratio 10^6: 10^12 bilinear samples for one output bin of an 8 x 8 image (float64:
// the CPU device's native RoiAlign is float32).
TEST(RefDeadlineTest, RoiAlignWithAHugeSamplingRatioStops) {
  OneNode m = one_node("RoiAlign", {ones_f64({1, 1, 8, 8}), Tensor::from_vector<double>({1, 4}, {0, 0, 7, 7}),
                                    Tensor::from_vector<int64_t>({1}, {0})}, 1, 16);
  m.g.nodes[0].attributes["sampling_ratio"] = Attribute::make_int(1000000);
  expect_stops("RoiAlign", m);
}

// A rank-16 cubic Resize of one element: 4^16 = 4.3 x 10^9 taps for its one output element.
// (A scale of 1.5, not 1: at a scale of 1 each axis has one tap of non-zero weight, and the
// kernel drops the others since stop 18.)
TEST(RefDeadlineTest, CubicResizeOfHighRankStopsInsideOneOutputElement) {
  const Dims dims(16, 1);
  OneNode m = one_node("Resize", {ones_f64(dims), Tensor(DType::kFloat32, {0}),
                                  Tensor::from_vector<float>({16}, std::vector<float>(16, 1.5f))}, 1, 13);
  m.g.nodes[0].attributes["mode"] = Attribute::make_string("cubic");
  expect_stops("Resize", m);
}

// A window's size is a value: 2^24 elements of BlackmanWindow (two cosines each, 128 MB of
// doubles) from one int64 (stop 18: the loop read no deadline).
TEST(RefDeadlineTest, CosineWindowOfAHugeSizeStops) {
  expect_stops("BlackmanWindow", one_node("BlackmanWindow", {Tensor::scalar<int64_t>(int64_t{1} << 24)}, 1));
}

// LRN with size 2 x 10^6 over 10^6 channels of one element: 10^12 steps on 4 MB.
TEST(RefDeadlineTest, LrnWithAWindowOfEveryChannelStops) {
  OneNode m = one_node("LRN", {ones_f32({1, 1000000})}, 1);
  m.g.nodes[0].attributes["size"] = Attribute::make_int(2000001);
  expect_stops("LRN", m);
}

// --- Work quadratic or cubic in a tensor's size --------------------------------------------

// 200,000 disjoint boxes (3.2 MB, float64: the CPU device's native NMS is float32): 2 x 10^10
// IoUs when none suppresses another.
TEST(RefDeadlineTest, NonMaxSuppressionOfManyDisjointBoxesStops) {
  const int64_t n = 200000;
  Tensor boxes = filled<double>(DType::kFloat64, {1, n, 4}, [](int64_t i) {
    const int64_t box = i / 4, c = i % 4;  // [y1, x1, y2, x2] = [0, 2 box, 1, 2 box + 1]
    return c == 0 ? 0.0 : c == 2 ? 1.0 : static_cast<double>(2 * box + (c == 3 ? 1 : 0));
  });
  Tensor scores = filled<double>(DType::kFloat64, {1, 1, n}, [](int64_t i) { return static_cast<double>(i); });
  expect_stops("NonMaxSuppression", one_node("NonMaxSuppression", {boxes, scores, Tensor::scalar<int64_t>(n)}, 1));
}

// 200,000 distinct values (1.6 MB): 2 x 10^10 slice comparisons.
TEST(RefDeadlineTest, UniqueOfManyDistinctValuesStops) {
  expect_stops("Unique", one_node("Unique", {filled<double>(DType::kFloat64, {200000}, [](int64_t i) {
                                     return static_cast<double>(i);
                                   })}, 1));
}

// 2 x 10^6 equal values: one comparison each, so only Unique's linear loops run (a slice and a
// vector made per value, about 1 us each). Those loops read no deadline before stop 18 (make
// sanitize-asan-cpp: the test above ran 7 s under ASan; this one ran to the end, 2.1 s on the
// ordinary build); now the run stops near its 50 ms deadline, well within 1 s, on both devices.
TEST(RefDeadlineTest, UniqueStopsWhileReadingItsValues) {
  OneNode m = one_node("Unique", {filled<float>(DType::kFloat32, {2000000}, [](int64_t) { return 0.f; })}, 1);
  for (auto& device : both_devices()) {
    SCOPED_TRACE(device->name());
    Outcome o = run_with_deadline(*device, m, kDeadlineMs);
    ASSERT_FALSE(o.status.ok()) << "ran to the end in " << ms(o.elapsed) << " ms";
    EXPECT_EQ(o.status.code(), StatusCode::kDeadlineExceeded) << o.status.to_string();
    EXPECT_LT(o.elapsed, std::chrono::seconds(1)) << ms(o.elapsed) << " ms";
  }
}

// A 2048 x 2048 float64 determinant (32 MB): 2.9 x 10^9 steps of LU.
TEST(RefDeadlineTest, DeterminantOfALargeMatrixStops) {
  const int64_t n = 2048;
  expect_stops("Det", one_node("Det", {filled<double>(DType::kFloat64, {n, n}, [n](int64_t i) {
                                 return i / n == i % n ? static_cast<double>(n) : 1.0;
                               })}, 1));
}

// A DFT of 2^21 samples (8 MB): 2^42 terms; 2^21 per bin, which the old check every 64 bins
// (1.3 x 10^8 terms, seconds) did not read often enough.
TEST(RefDeadlineTest, LongSignalDftStopsBetweenBins) {
  expect_stops("DFT", one_node("DFT", {ones_f32({1, int64_t{1} << 21, 1})}, 1));
}

// --- Work per step past the tensors: recurrences, attention, quantized products -----------

// RNN with H = 1024 (R is 4 MB): 10^6 multiply-adds a
// step, 2,000 steps; GRU and LSTM with H = 256: 2 to 2.6 x 10^5 a step, 10,000 steps.
TEST(RefDeadlineTest, RecurrenceStopsBetweenSteps) {
  const int64_t h = 1024, steps = 2000;
  auto small = [](int64_t i) { return 0.001 * static_cast<double>(i % 13); };
  // Float64: the CPU device's native RNN, GRU and LSTM are float32 (and not interrupted mid-node).
  OneNode m = one_node("RNN", {ones_f64({steps, 1, 1}), filled<double>(DType::kFloat64, {1, h, 1}, small),
                               filled<double>(DType::kFloat64, {1, h, h}, small)}, 1);
  m.g.nodes[0].attributes["hidden_size"] = Attribute::make_int(h);
  expect_stops("RNN", m);
  // GRU and LSTM run on the same loop.
  for (const char* op : {"GRU", "LSTM"}) {
    const int64_t gates = std::string(op) == "GRU" ? 3 : 4, gh = 256;
    OneNode r = one_node(op, {ones_f64({5 * steps, 1, 1}), filled<double>(DType::kFloat64, {1, gates * gh, 1}, small),
                              filled<double>(DType::kFloat64, {1, gates * gh, gh}, small)}, 1);
    r.g.nodes[0].attributes["hidden_size"] = Attribute::make_int(gh);
    expect_stops(op, r);
  }
}

// MultiHeadAttention over 65,536 queries and keys of width 16 (4 MB each): 1.4 x 10^11 steps.
// The CPU device runs float32 attention natively: reference device only.
TEST(RefDeadlineTest, AttentionStopsBetweenQueryRows) {
  const int64_t len = 65536, width = 16;
  OneNode m = one_node("MultiHeadAttention", {ones_f32({1, len, width}), ones_f32({1, len, width}),
                                              ones_f32({1, len, width})}, 1, 17, "pyflame_rt");
  m.g.nodes[0].attributes["num_heads"] = Attribute::make_int(1);
  m.g.nodes[0].attributes["batch_first"] = Attribute::make_int(1);
  expect_stops("MultiHeadAttention", m, /*on_cpu=*/false);
}

// pyflame_rt.QMatMul of [256, 65536] by [65536, 256] (16 MB each): 4.3 x 10^9 multiply-adds.
// The CPU device runs it natively: reference device only.
TEST(RefDeadlineTest, QuantizedMatMulStopsInsideTheProduct) {
  const int64_t k = 65536;
  Tensor a = filled<uint8_t>(DType::kUInt8, {256, k}, [](int64_t i) { return static_cast<double>(i % 200); });
  Tensor b = filled<int8_t>(DType::kInt8, {k, 256}, [](int64_t i) { return static_cast<double>(i % 100 - 50); });
  OneNode m = one_node("QMatMul", {a, Tensor::scalar<float>(0.5f), Tensor::scalar<uint8_t>(3), b,
                                   Tensor::scalar<float>(0.25f), Tensor::scalar<int8_t>(0)}, 1, 17, "pyflame_rt");
  expect_stops("QMatMul", m, /*on_cpu=*/false);
}

// --- Attributes that sized empty loops, and sequences of many parts -------------------------

// TfIdfVectorizer walked every length up to max_gram_length and every skip up to
// max_skip_count even when none fits the row (2^62 of them: forever, and
// start + (len - 1) * (s + 1) overflowed). Those are not walked now, with the same counts.
TEST(RefDeadlineTest, TfIdfLengthsAndSkipsPastTheRowAreNotWalked) {
  OneNode m = one_node("TfIdfVectorizer", {Tensor::from_vector<int64_t>({1, 6}, {1, 2, 1, 3, 1, 2})}, 1, 9);
  Node& n = m.g.nodes[0];
  n.attributes["mode"] = Attribute::make_string("TF");
  n.attributes["min_gram_length"] = Attribute::make_int(1);
  n.attributes["max_gram_length"] = Attribute::make_int(int64_t{1} << 62);
  n.attributes["max_skip_count"] = Attribute::make_int(int64_t{1} << 62);
  n.attributes["pool_int64s"] = Attribute::make_ints({1, 2, 1, 2});  // 1-grams {1}, {2}; 2-gram {1, 2}
  n.attributes["ngram_counts"] = Attribute::make_ints({0, 2});
  n.attributes["ngram_indexes"] = Attribute::make_ints({0, 1, 2});
  for (auto& device : both_devices()) {
    RunContext ctx;  // no deadline: it must end by itself
    auto exe = device->compile(m.g);
    ASSERT_TRUE(exe.ok()) << exe.status().to_string();
    auto out = (*exe)->run(m.feeds, ctx);
    ASSERT_TRUE(out.ok()) << device->name() << ": " << out.status().to_string();
    const Tensor& y = (*out)[0].tensor;
    ASSERT_EQ(y.dims(), (Dims{1, 3}));
    // 1: three times; 2: twice; (1, 2) at any skip: (0,1) (0,5) (2,5) (4,5) = 4.
    EXPECT_EQ(y.data<float>()[0], 3.f) << device->name();
    EXPECT_EQ(y.data<float>()[1], 2.f) << device->name();
    EXPECT_EQ(y.data<float>()[2], 4.f) << device->name();
  }
  // A negative output column wrote before the row: refused, naming it.
  n.attributes["ngram_indexes"] = Attribute::make_ints({0, -5, 2});
  auto exe = make_ref_device()->compile(m.g);
  ASSERT_TRUE(exe.ok());
  auto bad = (*exe)->run(m.feeds, RunContext{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("ngram_indexes holds -5"), std::string::npos) << bad.status().to_string();
}

// What is walked can still be huge (a 20,000-token row at every length and skip): it stops.
TEST(RefDeadlineTest, TfIdfOfALongRowAtEveryLengthStops) {
  OneNode m = one_node("TfIdfVectorizer", {filled<int64_t>(DType::kInt64, {1, 20000}, [](int64_t i) {
                                             return static_cast<double>(i % 3);
                                           })}, 1, 9);
  Node& n = m.g.nodes[0];
  n.attributes["mode"] = Attribute::make_string("TF");
  n.attributes["min_gram_length"] = Attribute::make_int(1);
  n.attributes["max_gram_length"] = Attribute::make_int(20000);
  n.attributes["max_skip_count"] = Attribute::make_int(20000);
  n.attributes["pool_int64s"] = Attribute::make_ints({1});
  n.attributes["ngram_counts"] = Attribute::make_ints({0});
  n.attributes["ngram_indexes"] = Attribute::make_ints({0});
  expect_stops("TfIdfVectorizer", m);
}

// --- terminate, from another thread ---------------------------------------------------------

// RunOptions.terminate set while one long reference node runs: kFail "terminated", soon after.
TEST(RefDeadlineTest, TerminateFromAnotherThreadStopsALongKernel) {
  OneNode m = one_node("Einsum", {ones_f32({1000000}), ones_f32({1000000})}, 1, 12);
  m.g.nodes[0].attributes["equation"] = Attribute::make_string("i,j->");
  for (auto& device : both_devices()) {
    std::atomic<bool> terminate{false};
    RunContext ctx;
    ctx.terminate = &terminate;
    std::thread setter([&terminate] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      terminate = true;
    });
    Outcome o = run_with(*device, m, ctx);
    setter.join();
    ASSERT_FALSE(o.status.ok()) << device->name();
    EXPECT_EQ(o.status.code(), StatusCode::kFail) << o.status.to_string();
    EXPECT_NE(o.status.to_string().find("terminated"), std::string::npos) << o.status.to_string();
    EXPECT_LT(o.elapsed, kStoppedWithin) << device->name() << ": " << ms(o.elapsed) << " ms";
  }
}

// The poll itself: a check once per `work_per_check` units, the status of the check returned.
TEST(RefDeadlineTest, InterruptPollChecksOncePerItsWork) {
  std::atomic<bool> terminate{true};
  RunContext ctx;
  ctx.terminate = &terminate;
  RunInterruptScope scope(ctx);
  InterruptPoll poll(100);
  for (int i = 0; i < 99; ++i) ASSERT_TRUE(poll.tick().ok()) << i;  // 99 units: no check yet
  Status st = poll.tick();                                             // the 100th: checked
  EXPECT_EQ(st.code(), StatusCode::kFail);
  InterruptPoll big(100);
  EXPECT_FALSE(big.tick(std::numeric_limits<int64_t>::max()).ok());  // no overflow, checked
  terminate = false;
  EXPECT_TRUE(big.tick(1000).ok());
}

}  // namespace
}  // namespace pyflame_rt
