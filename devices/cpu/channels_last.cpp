#include "devices/cpu/channels_last.h"

#include <algorithm>

namespace pyflame_rt {
namespace cpu {

bool is_channels_last_f32(const dnnl::memory::desc& desc, const Dims& dims) {
  using tag = dnnl::memory::format_tag;
  if (desc.data_type() != dnnl::memory::data_type::f32) return false;
  tag t;
  switch (dims.size()) {
    case 3: t = tag::acb; break;
    case 4: t = tag::acdb; break;
    case 5: t = tag::acdeb; break;
    default: return false;
  }
  return desc == dnnl::memory::desc(to_dnnl(dims), dnnl::memory::data_type::f32, t);
}

void channels_last_to_first(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial) {
  // 16 x 16 tiles: a tile's 16 source rows and 16 destination rows each stay in L1, and the
  // inner loop writes 16 contiguous floats (one cache line) per source column.
  constexpr int64_t kTile = 16;
  const int64_t c_tiles = (channels + kTile - 1) / kTile, s_tiles = (spatial + kTile - 1) / kTile;
  const int64_t tiles = batch * c_tiles * s_tiles;
#pragma omp parallel for schedule(static) if (batch * channels * spatial >= (int64_t{1} << 17))
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t n = t / (c_tiles * s_tiles), ct = t / s_tiles % c_tiles, st = t % s_tiles;
    const int64_t c0 = ct * kTile, c1 = std::min(channels, c0 + kTile);
    const int64_t s0 = st * kTile, s1 = std::min(spatial, s0 + kTile);
    const float* in = src + n * spatial * channels;
    float* out = dst + n * channels * spatial;
    for (int64_t c = c0; c < c1; ++c) {
      float* row = out + c * spatial;
#pragma omp simd
      for (int64_t s = s0; s < s1; ++s) row[s] = in[s * channels + c];
    }
  }
}

void channels_first_to_last(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial) {
  // The same tiles as above, the roles of the two layouts swapped: writes run along channels.
  constexpr int64_t kTile = 16;
  const int64_t c_tiles = (channels + kTile - 1) / kTile, s_tiles = (spatial + kTile - 1) / kTile;
  const int64_t tiles = batch * c_tiles * s_tiles;
#pragma omp parallel for schedule(static) if (batch * channels * spatial >= (int64_t{1} << 17))
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t n = t / (c_tiles * s_tiles), ct = t / s_tiles % c_tiles, st = t % s_tiles;
    const int64_t c0 = ct * kTile, c1 = std::min(channels, c0 + kTile);
    const int64_t s0 = st * kTile, s1 = std::min(spatial, s0 + kTile);
    const float* in = src + n * channels * spatial;
    float* out = dst + n * spatial * channels;
    for (int64_t s = s0; s < s1; ++s) {
      float* row = out + s * channels;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) row[c] = in[c * spatial + s];
    }
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
