#include "devices/cpu/transpose_2d.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace pyflame_rt {
namespace cpu {

namespace {

using Word = uint32_t;  // any 4-byte element, moved bit for bit

// One column strip, columns [c0, c1) of every row: the source is read a cache line (16 words)
// per row, each destination row written sequentially.
void strip_scalar(const Word* src, Word* dst, int64_t rows, int64_t cols, int64_t c0, int64_t c1) {
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int64_t r1 = std::min(rows, r0 + 16);
    for (int64_t c = c0; c < c1; ++c) {
      Word* out = dst + c * rows;
      for (int64_t r = r0; r < r1; ++r) out[r] = src[r * cols + c];
    }
  }
}

// 8 x 8 block: dst rows 0..7 (stride ds) from src rows 0..7 (stride ss), in registers.
__attribute__((target("avx2"))) inline void block_8x8(const float* s, int64_t ss, float* d, int64_t ds) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ss), r2 = _mm256_loadu_ps(s + 2 * ss),
               r3 = _mm256_loadu_ps(s + 3 * ss), r4 = _mm256_loadu_ps(s + 4 * ss), r5 = _mm256_loadu_ps(s + 5 * ss),
               r6 = _mm256_loadu_ps(s + 6 * ss), r7 = _mm256_loadu_ps(s + 7 * ss);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
               u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
               u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

__attribute__((target("avx2"))) void strip_avx2(const Word* src, Word* dst, int64_t rows, int64_t cols, int64_t c0,
                                                int64_t c1) {
  const float* s = reinterpret_cast<const float*>(src);
  float* d = reinterpret_cast<float*>(dst);
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8) {
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8) block_8x8(s + r * cols + c, cols, d + c * rows + r, rows);
    for (; r < rows; ++r) {
      for (int64_t i = 0; i < 8; ++i) dst[(c + i) * rows + r] = src[r * cols + c + i];
    }
  }
  if (c < c1) strip_scalar(src, dst, rows, cols, c, c1);
}

bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

}  // namespace

void transpose_2d_4byte(const void* src, void* dst, int64_t batch, int64_t rows, int64_t cols) {
  // Strips of 16 columns: the source's cache lines are used whole, and strips are independent
  // work items for the threads.
  constexpr int64_t kStrip = 16;
  const int64_t strips = (cols + kStrip - 1) / kStrip, items = batch * strips;
  const bool avx2 = has_avx2();
  const Word* in = static_cast<const Word*>(src);
  Word* out = static_cast<Word*>(dst);
#pragma omp parallel for schedule(static) if (batch * rows * cols >= (int64_t{1} << 17) && items > 1)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t n = t / strips, c0 = t % strips * kStrip, c1 = std::min(cols, c0 + kStrip);
    const Word* s = in + n * rows * cols;
    Word* d = out + n * rows * cols;
    if (avx2) {
      strip_avx2(s, d, rows, cols, c0, c1);
    } else {
      strip_scalar(s, d, rows, cols, c0, c1);
    }
  }
}

bool as_batched_transpose(const Dims& dims, const std::vector<int64_t>& perm, int64_t* batch, int64_t* rows,
                          int64_t* cols) {
  // Unit axes dropped: `reduced[a]` is axis a's index among the non-unit axes.
  std::vector<int64_t> reduced(dims.size(), -1), sizes;
  for (size_t a = 0; a < dims.size(); ++a) {
    if (dims[a] == 1) continue;
    reduced[a] = static_cast<int64_t>(sizes.size());
    sizes.push_back(dims[a]);
  }
  // The output's axes in order as groups of source axes that stay adjacent and ascending: each
  // group is one merged axis of both tensors. {first, last} reduced source axis.
  std::vector<std::pair<int64_t, int64_t>> groups;
  for (int64_t p : perm) {
    const int64_t r = reduced[static_cast<size_t>(p)];
    if (r < 0) continue;
    if (!groups.empty() && groups.back().second + 1 == r) {
      groups.back().second = r;
    } else {
      groups.push_back({r, r});
    }
  }
  auto size = [&](const std::pair<int64_t, int64_t>& g) {
    int64_t n = 1;
    for (int64_t a = g.first; a <= g.second; ++a) n *= sizes[static_cast<size_t>(a)];
    return n;
  };
  if (groups.size() == 2 && groups[1].second < groups[0].first) {  // (1, 0)
    *batch = 1;
    *rows = size(groups[1]);
    *cols = size(groups[0]);
    return true;
  }
  if (groups.size() == 3 && groups[0].second < groups[2].first && groups[2].second < groups[1].first) {  // (0, 2, 1)
    *batch = size(groups[0]);
    *rows = size(groups[2]);
    *cols = size(groups[1]);
    return true;
  }
  return false;
}

bool keeps_element_order(const Dims& dims, const std::vector<int64_t>& perm) {
  int64_t last = -1;
  for (int64_t p : perm) {
    if (dims[static_cast<size_t>(p)] == 1) continue;
    if (p < last) return false;
    last = p;
  }
  return true;
}

}  // namespace cpu
}  // namespace pyflame_rt
