// Plain-loop kernels of the native ops that oneDNN has no primitive for (reductions,
// ArgMax/ArgMin). Each is compiled for AVX-512, AVX2 and the baseline with GCC's
// target_clones, and the loader picks the variant by the CPU's features at run time: one
// binary runs on AVX2-only hosts (Zen 1/3) and uses AVX-512 where present. They assert
// nothing, allocate nothing, never fail: the ops that call them validate shapes.
#pragma once

#include <cstdint>
#include <vector>

namespace pyflame_rt {
namespace cpu {

enum class ReduceKind { kSum, kMean, kMax, kMin, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

// y[o * inner + j] = reduce over r of x[(o * len + r) * inner + j], for o in [o_begin, o_end)
// and j in [j_begin, j_end) (len >= 1). Mean divides by len; L2 takes the square root;
// LogSum/LogSumExp take the log (LogSumExp subtracts the maximum first, for range).
void reduce_f32(ReduceKind kind, const float* x, float* y, int64_t len, int64_t inner, int64_t o_begin,
                int64_t o_end, int64_t j_begin, int64_t j_end);

// ArgMax (is_max) / ArgMin over the middle axis of [outer, len, inner], first or last index of
// the extreme value: y[o * inner + j], for o in [o_begin, o_end).
void arg_reduce_f32(bool is_max, bool last, const float* x, int64_t* y, int64_t len, int64_t inner,
                    int64_t o_begin, int64_t o_end);

// Softmax (or LogSoftmax, `log`) over the middle axis of [outer, len, inner] with inner > 1,
// for o in [o_begin, o_end) and columns j in [j_begin, j_end): vector lanes run along the
// inner axis, which oneDNN 2.6 leaves to its reference kernel (4.6 ms for [1, 200, 256] in a
// channels-last 1-D model). y may not alias x.
void softmax_middle_f32(const float* x, float* y, int64_t len, int64_t inner, int64_t o_begin, int64_t o_end,
                        int64_t j_begin, int64_t j_end, bool log);

// Softmax (or LogSoftmax) over the last axis of [rows, len], each row's passes vectorised
// along it; for small tensors, where oneDNN's primitive costs more to execute than the work
// (softmax_op.cpp). Denormal outputs as std::exp gives them, like softmax_middle_f32.
void softmax_last_f32(const float* x, float* y, int64_t rows, int64_t len, bool log);

// dst (contiguous, dims `dims`) = the elements of src at offset + sum(i_d * strides[d]), strides
// in elements and possibly negative (a Slice with any step). Neighbouring dims that are
// contiguous in src are merged first, so the inner loop is a memcpy wherever the view allows;
// outer rows are split over the calling thread's OpenMP team when the copy is large.
void strided_copy(const char* src, int64_t elem_size, const std::vector<int64_t>& dims,
                  const std::vector<int64_t>& strides, char* dst);

// Per-channel affine map with an optional Relu over one run of a channel-blocked layout
// (nChw8c/nChw16c: `positions` spatial positions of `block` channels each):
//   y[p * block + i] = f(x[p * block + i] * s[i] + t[i]), f = max(., 0) when `relu`.
// block == 1 is one plane of a plain layout (s[0], t[0] for all); any other block is rows of
// channels-last data (block = the channel count). x and y may be the same.
void channel_affine_f32(const float* x, float* y, const float* s, const float* t, int64_t positions, int64_t block,
                        bool relu);

// mean[i] = the mean over p of x[p * block + i], i in [0, block): the channels of one run of a
// channel-blocked layout (block 8/16), or one plain plane (block 1).
void channel_mean_f32(const float* x, float* mean, int64_t positions, int64_t block);

// sum[i] += x[r * width + i] for each row r in [0, rows), i in [0, width): channels-last
// data summed over positions (rows of `width` channels).
void rows_sum_f32(const float* x, float* sum, int64_t rows, int64_t width);

// y[i] = x[i] * s[i] over [0, n) (x and y may be the same).
void scale_row_f32(const float* x, float* y, const float* s, int64_t n);

// sum of a[i] * b[i] over [0, n), in vector lanes (the order of the sum is not sequential).
float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace cpu
}  // namespace pyflame_rt
