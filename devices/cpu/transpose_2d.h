// Batched 2-D transposes of 4-byte elements: what every Transpose that only swaps two groups of
// axes reduces to (NCHW <-> NHWC around ConvNeXt's and Swin's LayerNorms, a channels-last
// value made plain). oneDNN 2.6's reorder moves a strided view at 0.7-3.5 GB/s; 8 x 8 register
// transposes on AVX2 run near memcpy's rate (docs/performance.md, "Transposes").
#pragma once

#include <cstdint>
#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

// dst[n][c][r] = src[n][r][c] for n < batch, r < rows, c < cols, 4-byte elements (floats or
// 32-bit integers: only moved, never computed on). Parallel over the run's OpenMP threads when
// large.
void transpose_2d_4byte(const void* src, void* dst, int64_t batch, int64_t rows, int64_t cols);

// Whether transposing a row-major tensor of `dims` by `perm` is a batched 2-D transpose, i.e.
// after dropping unit axes and merging axes that stay adjacent, `perm` is (1, 0) or (0, 2, 1).
// Then `*batch`, `*rows`, `*cols` are its sizes (src [batch, rows, cols] -> [batch, cols, rows]).
// `perm` must be a valid permutation of the axes.
bool as_batched_transpose(const Dims& dims, const std::vector<int64_t>& perm, int64_t* batch, int64_t* rows,
                          int64_t* cols);

// Whether `perm` keeps every axis of more than one element in order (it only moves unit axes:
// [1, 50, 64] by (1, 0, 2)): the transposed tensor has the same bytes, a reshape.
bool keeps_element_order(const Dims& dims, const std::vector<int64_t>& perm);

}  // namespace cpu
}  // namespace pyflame_rt
