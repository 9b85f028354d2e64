#include "devices/cpu/channels_last.h"

#include "devices/cpu/transpose_2d.h"

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

void channels_last_to_first(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial) {
  transpose_2d_4byte(src, dst, batch, /*rows=*/spatial, /*cols=*/channels);
}

void channels_first_to_last(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial) {
  transpose_2d_4byte(src, dst, batch, /*rows=*/channels, /*cols=*/spatial);
}

}  // namespace cpu
}  // namespace pyflame_rt
