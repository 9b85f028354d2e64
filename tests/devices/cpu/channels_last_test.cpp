// Channels-last native values made plain by our transpose (devices/cpu/channels_last.h):
// every element lands where oneDNN's reorder would put it, for sizes that are and are not
// multiples of the 16 x 16 tile, in 1-D, 2-D and 3-D, serial and parallel.
#include "devices/cpu/channels_last.h"

#include <gtest/gtest.h>
#include <omp.h>

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
