// Channels-last native values made plain by our transpose (devices/cpu/channels_last.h):
// every element lands where oneDNN's reorder would put it, for sizes that are and are not
// multiples of the 8 x 8 blocks and 16-column strips, in 1-D, 2-D and 3-D, serial and parallel.
#include "devices/cpu/channels_last.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {
namespace {

// A native value in `t` (acb / acdb / acdeb) holding x[n][c][s] = n * 1e6 + c * 1000 + s.
CpuValue channels_last_value(const Dims& dims, dnnl::memory::format_tag t) {
  dnnl::memory::desc desc(to_dnnl(dims), dnnl::memory::data_type::f32, t);
  CpuValue v = CpuValue::from_native(dnnl::memory(desc, engine()), dims);
  const int64_t n = dims[0], c = dims[1], s = num_elements(dims) / (n * c);
  auto* p = static_cast<float*>(v.native.get_data_handle());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < s; ++k) {
      for (int64_t j = 0; j < c; ++j) p[(i * s + k) * c + j] = static_cast<float>(i * 1000000 + j * 1000 + k);
    }
  }
  return v;
}

void expect_plain(CpuValue& v) {
  ASSERT_TRUE(is_channels_last_f32(v.native.get_desc(), v.dims));
  const Tensor& t = v.as_plain().tensor;
  ASSERT_EQ(t.dims(), v.dims);
  const int64_t n = v.dims[0], c = v.dims[1], s = num_elements(v.dims) / (n * c);
  const float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      for (int64_t k = 0; k < s; ++k) {
        ASSERT_EQ(p[(i * c + j) * s + k], static_cast<float>(i * 1000000 + j * 1000 + k)) << i << "," << j << "," << k;
      }
    }
  }
}

TEST(ChannelsLastTest, OneDimensionalAudioShape) {
  CpuValue v = channels_last_value({1, 256, 200}, dnnl::memory::format_tag::acb);
  expect_plain(v);
}

TEST(ChannelsLastTest, SizesOffTheTileAndBatches) {
  CpuValue v1 = channels_last_value({3, 17, 5}, dnnl::memory::format_tag::acb);
  expect_plain(v1);
  CpuValue v2 = channels_last_value({2, 33, 7, 9}, dnnl::memory::format_tag::acdb);
  expect_plain(v2);
  CpuValue v3 = channels_last_value({1, 5, 3, 4, 6}, dnnl::memory::format_tag::acdeb);
  expect_plain(v3);
}

TEST(ChannelsLastTest, ParallelOnLargeValues) {
  omp_set_num_threads(2);
  CpuValue v = channels_last_value({2, 300, 19, 23}, dnnl::memory::format_tag::acdb);  // 262k elements
  expect_plain(v);
}

// A plain value asked for channels-last (a kernel's input): the transpose the other way.
TEST(ChannelsLastTest, PlainValueMadeChannelsLast) {
  omp_set_num_threads(2);
  for (const Dims& d : std::vector<Dims>{{1, 256, 200}, {3, 17, 5}, {2, 33, 7, 9}, {2, 300, 19, 23}}) {
    Tensor t(DType::kFloat32, d);
    const int64_t n = d[0], c = d[1], s = num_elements(d) / (n * c);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
    CpuValue v = CpuValue::from_plain(Value(t));
    static const dnnl::memory::format_tag kTags[] = {dnnl::memory::format_tag::undef, dnnl::memory::format_tag::undef,
                                                     dnnl::memory::format_tag::undef, dnnl::memory::format_tag::acb,
                                                     dnnl::memory::format_tag::acdb};
    dnnl::memory::desc last(to_dnnl(d), dnnl::memory::data_type::f32, kTags[d.size()]);
    dnnl::memory m = v.as_native(last);
    ASSERT_TRUE(m.get_desc() == last);
    const auto* p = static_cast<const float*>(m.get_data_handle());
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t k = 0; k < s; ++k) {
        for (int64_t j = 0; j < c; ++j) {
          ASSERT_EQ(p[(i * s + k) * c + j], static_cast<float>((i * c + j) * s + k)) << dims_to_string(d);
        }
      }
    }
  }
}

// An op on a channels-last value gives what it gives on the same value made plain (the path
// every other layout takes), and says whether its output kept the layout.
struct Both {
  CpuValue from_native, from_plain;
  bool read_in_place = false;  // the channels-last input was never made plain
};

// A channels-last value of `dims` holding sin(0.37 i) * 3 at memory offset i.
CpuValue wavy_value(const Dims& dims, dnnl::memory::format_tag tag) {
  CpuValue v = channels_last_value(dims, tag);
  auto* p = static_cast<float*>(v.native.get_data_handle());
  for (int64_t i = 0; i < num_elements(dims); ++i) p[i] = std::sin(0.37f * static_cast<float>(i)) * 3.f;
  return v;
}

Both run_both(const Node& node, int64_t opset, const Dims& dims, dnnl::memory::format_tag tag) {
  CpuValue native = wavy_value(dims, tag);
  CpuValue plain = CpuValue::from_plain(Value(wavy_value(dims, tag).as_plain().tensor));
  Graph g;
  Both out;
  std::vector<CpuValue> results(1);
  for (CpuValue* x : {&native, &plain}) {
    std::vector<CpuValue*> in{x};
    std::unique_ptr<NativeOp> op = node.op_type == "Softmax" || node.op_type == "LogSoftmax"
                                       ? make_softmax_op(node, opset, g)
                                       : make_reduce_op(node, opset, g);
    EXPECT_TRUE(op->run(in, results).ok()) << node.op_type;
    (x == &native ? out.from_native : out.from_plain) = results[0];
  }
  out.read_in_place = !native.has_plain;
  return out;
}

// `summation_slack` widens the tolerance for outputs that are sums: see reduction_slack.
void expect_same(CpuValue& a, CpuValue& b, const std::string& label, float summation_slack = 0.f) {
  const Tensor& x = a.as_plain().tensor;
  const Tensor& y = b.as_plain().tensor;
  ASSERT_EQ(x.dims(), y.dims()) << label;
  for (int64_t i = 0; i < x.numel(); ++i) {
    ASSERT_NEAR(x.data<float>()[i], y.data<float>()[i], 1e-5f * (1.f + std::abs(y.data<float>()[i])) + summation_slack)
        << label << " @" << i;
  }
}

// A reduction in memory order and one in logical order add the same n terms in different
// orders. Each order's float error is at most (n - 1) * 2^-24 * sum|term| (recursive
// summation), and sum|term| <= n * max|term|: the two may differ by twice that. With the
// cancellation of wavy_value's sines (a sum of 255 terms of up to 3 comes to -0.11) that is
// far more than a relative 1e-5: a serial sum (the sanitizer builds' -O1 does not vectorise
// the `omp simd` reduction) differed by 2e-5 from the other order on [3,17,5], where -O3's
// lanes happened to agree. A wrong element or layout still moves a sum by about a term (up
// to 3), well past this bound for the sizes below.
float reduction_slack(int64_t n, float max_abs_term) {
  return 2.f * static_cast<float>(n - 1) * std::ldexp(1.f, -24) * static_cast<float>(n) * max_abs_term;
}

Node op_node(const std::string& op) {
  Node n;
  n.op_type = n.name = op;
  n.inputs = {"x"};
  n.outputs = {"y"};
  return n;
}

// The 1-D audio model's attentive pooling: Softmax over time and ReduceSum/ReduceMean over time
// on a 1-D convolution's channels-last output, read in place; and the cases that cannot be.
TEST(ChannelsLastTest, ReductionsAndSoftmaxReadTheLayoutInPlace) {
  omp_set_num_threads(2);
  using tag = dnnl::memory::format_tag;
  for (int64_t axis : {0, 1, 2, -1}) {
    for (const char* op : {"Softmax", "LogSoftmax"}) {
      Node n = op_node(op);
      n.attributes["axis"] = Attribute::make_int(axis);
      for (const Dims& d : std::vector<Dims>{{1, 256, 200}, {3, 17, 5}}) {
        Both r = run_both(n, 13, d, tag::acb);
        const std::string label = std::string(op) + " axis " + std::to_string(axis) + " " + dims_to_string(d);
        // The output stays channels-last: nothing was transposed.
        EXPECT_TRUE(r.read_in_place) << label;
        EXPECT_TRUE(r.from_native.has_native && is_channels_last_f32(r.from_native.native.get_desc(), d)) << label;
        expect_same(r.from_native, r.from_plain, label);
      }
    }
  }
  Node n = op_node("Softmax");
  n.attributes["axis"] = Attribute::make_int(1);
  Both r4 = run_both(n, 13, {2, 9, 5, 7}, tag::acdb);
  expect_same(r4.from_native, r4.from_plain, "Softmax 4-D channel axis");

  struct R { const char* op; std::vector<int64_t> axes; int64_t keepdims; Dims dims; bool in_place; };
  for (const R& c : std::vector<R>{{"ReduceSum", {2}, 0, {1, 256, 200}, true},   // over time: [1, 256]
                                   {"ReduceMean", {2}, 1, {1, 256, 200}, true},  // [1, 256, 1]
                                   {"ReduceMax", {1}, 1, {3, 17, 5}, true},      // over channels
                                   {"ReduceSum", {0}, 0, {3, 17, 5}, false},     // C kept before T: made plain
                                   {"ReduceL2", {2, 3}, 1, {2, 9, 5, 7}, true},
                                   {"ReduceSum", {}, 0, {3, 17, 5}, true}}) {   // all axes
    Node rn = op_node(c.op);
    if (!c.axes.empty()) rn.attributes["axes"] = Attribute::make_ints(c.axes);
    rn.attributes["keepdims"] = Attribute::make_int(c.keepdims);
    Both r = run_both(rn, 11, c.dims, c.dims.size() == 3 ? tag::acb : tag::acdb);
    EXPECT_EQ(r.read_in_place, c.in_place) << c.op << " " << dims_to_string(c.dims);
    int64_t n = 1;  // terms per output
    for (size_t a = 0; a < c.dims.size(); ++a) {
      if (c.axes.empty() || std::find(c.axes.begin(), c.axes.end(), static_cast<int64_t>(a)) != c.axes.end()) n *= c.dims[a];
    }
    const float max_abs_term = std::string(c.op) == "ReduceL2" ? 9.f : 3.f;  // |sin| * 3, squared for L2
    float slack = std::string(c.op) == "ReduceMax" ? 0.f : reduction_slack(n, max_abs_term);
    if (std::string(c.op) == "ReduceMean") slack /= static_cast<float>(n);
    expect_same(r.from_native, r.from_plain, std::string(c.op) + " " + dims_to_string(c.dims), slack);
  }
}

TEST(ChannelsLastTest, OtherLayoutsAreNotChannelsLast) {
  Dims d{1, 32, 10};
  EXPECT_FALSE(is_channels_last_f32(plain_desc(d), d));
  Dims d4{1, 32, 4, 4};
  dnnl::memory::desc blocked(to_dnnl(d4), dnnl::memory::data_type::f32, dnnl::memory::format_tag::nChw16c);
  EXPECT_FALSE(is_channels_last_f32(blocked, d4));
  dnnl::memory::desc u8(to_dnnl(d), dnnl::memory::data_type::u8, dnnl::memory::format_tag::acb);
  EXPECT_FALSE(is_channels_last_f32(u8, d));
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
