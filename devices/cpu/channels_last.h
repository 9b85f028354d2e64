// Channels-last values (oneDNN's nwc / nhwc / ndhwc, what its 1-D convolutions and some 2-D
// ones choose) made plain (channels first) by our own tiled transpose. oneDNN 2.6's jit:uni
// reorder takes 70 us for [1, 256, 200] nwc -> ncw on an AVX-512 core (0.7 GB/s), five of them
// 15% of the 1-D audio model's run; transpose_2d.h moves the same 200 KB in a fraction.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/cpu/dnnl_util.h"

namespace pyflame_rt {
namespace cpu {

// True when `desc` is f32 channels-last (acb, acdb or acdeb) for `dims`.
bool is_channels_last_f32(const dnnl::memory::desc& desc, const Dims& dims);

// A channels-last value read in place as the row-major tensor of its memory order,
// [N, spatial..., C]: ops that only need "which axis is which" (reductions, Softmax) work on it
// without a transpose to plain and back (the 1-D audio model's attentive pooling had five).
struct ChannelsLastView {
  const float* data = nullptr;
  Dims dims;                          // in memory order
  std::vector<int64_t> logical_axis;  // logical_axis[i]: the logical axis of memory axis i
};
// True and `view` filled when `v` is held natively (and not already plain) in a channels-last
// f32 layout.
bool channels_last_view(const CpuValue& v, ChannelsLastView* view);

// dst[n][c][s] = src[n][s][c] for n < batch, c < channels, s < spatial (the product of the
// spatial dims). Parallel over the run's OpenMP threads when large.
void channels_last_to_first(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial);

// The other way: dst[n][s][c] = src[n][c][s] (a plain value handed to a kernel that wants it
// channels-last; oneDNN's reorder took 15 us for [1, 256, 200]).
void channels_first_to_last(const float* src, float* dst, int64_t batch, int64_t channels, int64_t spatial);

}  // namespace cpu
}  // namespace pyflame_rt
