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

bool channels_last_view(const CpuValue& v, ChannelsLastView* view) {
  if (!v.has_native || v.has_plain || !is_channels_last_f32(v.native.get_desc(), v.dims)) return false;
  const int64_t rank = static_cast<int64_t>(v.dims.size());
  view->data = static_cast<const float*>(v.native.get_data_handle());
  view->dims.clear();
  view->logical_axis.clear();
  for (int64_t i = 0; i < rank; ++i) {
    const int64_t axis = i == 0 ? 0 : i == rank - 1 ? 1 : i + 1;  // N, spatial..., C
    view->logical_axis.push_back(axis);
    view->dims.push_back(v.dims[static_cast<size_t>(axis)]);
  }
  return true;
}

namespace {

// Per batch item, src [rows, cols] -> dst [cols, rows], in 16 x 16 tiles: a tile's 16 source
// rows and 16 destination rows each stay in L1, and the inner loop writes 16 contiguous floats
// (one cache line) per source column. Both layout directions are this one transpose.
void transpose_batched(const float* src, float* dst, int64_t batch, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 16;
  const int64_t r_tiles = (rows + kTile - 1) / kTile, c_tiles = (cols + kTile - 1) / kTile;
  const int64_t tiles = batch * c_tiles * r_tiles;
#pragma omp parallel for schedule(static) if (batch * rows * cols >= (int64_t{1} << 17))
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t n = t / (c_tiles * r_tiles), ct = t / r_tiles % c_tiles, rt = t % r_tiles;
    const int64_t c0 = ct * kTile, c1 = std::min(cols, c0 + kTile);
    const int64_t r0 = rt * kTile, r1 = std::min(rows, r0 + kTile);
    const float* in = src + n * rows * cols;
    float* out = dst + n * rows * cols;
    for (int64_t c = c0; c < c1; ++c) {
      float* row = out + c * rows;
#pragma omp simd
      for (int64_t r = r0; r < r1; ++r) row[r] = in[r * cols + c];
    }
  }
}

}  // namespace

void channels_last_to_first(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial) {
  transpose_batched(src, dst, batch, /*rows=*/spatial, /*cols=*/channels);
}

void channels_first_to_last(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial) {
  transpose_batched(src, dst, batch, /*rows=*/channels, /*cols=*/spatial);
}

}  // namespace cpu
}  // namespace pyflame_rt
