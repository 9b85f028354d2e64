#include "devices/cpu/rows_times_matrix.h"

#include <cstddef>


namespace pyflame_rt {
namespace cpu {

namespace {

// 16 floats in GCC's vector extension: one AVX-512 register, two AVX2 ones, four SSE ones in
// the clone for each (target_clones). Named accumulators, not a stack array: GCC kept an array
// of accumulators in memory, a store and a reload on every k (perf: 5.7 us a step for H 128).
typedef float Vec16 __attribute__((vector_size(64)));

// Vec16 in a signature changes the calling convention between targets (-Wpsabi); these helpers
// are always inlined into each clone, so no call ever passes one.
#pragma GCC diagnostic ignored "-Wpsabi"

__attribute__((always_inline)) inline Vec16 load16(const float* p) {
  Vec16 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

__attribute__((always_inline)) inline void store16(float* p, Vec16 v) { __builtin_memcpy(p, &v, sizeof(v)); }

// Always inlined: a call would compile them for the baseline target, not the clone's.
// out[0:64] = a[0:K] · b[0:K, 0:64]: four accumulators, two k at a time (eight independent
// FMA chains, enough to cover the FMA latency).
__attribute__((always_inline)) inline void dot64(const float* a, int64_t K, const float* b, int64_t ldb, float* out) {
  Vec16 s0 = {}, s1 = {}, s2 = {}, s3 = {}, t0 = {}, t1 = {}, t2 = {}, t3 = {};
  int64_t k = 0;
  for (; k + 1 < K; k += 2) {
    const float* b0 = b + k * ldb;
    const float* b1 = b0 + ldb;
    const float a0 = a[k], a1 = a[k + 1];
    s0 += a0 * load16(b0);
    s1 += a0 * load16(b0 + 16);
    s2 += a0 * load16(b0 + 32);
    s3 += a0 * load16(b0 + 48);
    t0 += a1 * load16(b1);
    t1 += a1 * load16(b1 + 16);
    t2 += a1 * load16(b1 + 32);
    t3 += a1 * load16(b1 + 48);
  }
  if (k < K) {
    const float* b0 = b + k * ldb;
    const float a0 = a[k];
    s0 += a0 * load16(b0);
    s1 += a0 * load16(b0 + 16);
    s2 += a0 * load16(b0 + 32);
    s3 += a0 * load16(b0 + 48);
  }
  store16(out, s0 + t0);
  store16(out + 16, s1 + t1);
  store16(out + 32, s2 + t2);
  store16(out + 48, s3 + t3);
}

// out[0:16] likewise.
__attribute__((always_inline)) inline void dot16(const float* a, int64_t K, const float* b, int64_t ldb, float* out) {
  Vec16 s = {}, t = {};
  int64_t k = 0;
  for (; k + 1 < K; k += 2) {
    s += a[k] * load16(b + k * ldb);
    t += a[k + 1] * load16(b + (k + 1) * ldb);
  }
  if (k < K) s += a[k] * load16(b + k * ldb);
  store16(out, s + t);
}

// rows x 16V columns of out from one panel: R rows at once, so that each panel row read from
// memory serves R rows of a (a batch of R re-streamed the matrix R times before: batch 4 of an
// H 128 LSTM step took 10.2 us instead of 2.6). R x V accumulators stay in registers: the
// constant trip counts unroll fully.
template <int R, int V>
__attribute__((always_inline)) inline void block_rows(const float* a, int64_t lda, int64_t K, const float* b,
                                                      int64_t ldb, float* out, int64_t ldo) {
  Vec16 acc[R][V] = {};
  for (int64_t k = 0; k < K; ++k) {
    Vec16 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = load16(b + k * ldb + 16 * v);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const float ar = a[r * lda + k];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] += ar * bv[v];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) store16(out + r * ldo + 16 * v, acc[r][v]);
  }
}

// Columns per panel: four 16-float accumulators.
constexpr int64_t kPanel = 64;

// R rows (1 <= R <= 4) of the product with one panel (columns [c, c + width));
// V: 16-column vectors per register block (4 where the ISA has 32 vector registers, 1 where a
// Vec16 takes two of 16).
template <int R, int V>
__attribute__((always_inline)) inline void rows_panel(const float* a, int64_t lda, int64_t K, const float* panel,
                                                      int64_t width, float* out, int64_t ldo) {
  int64_t j = 0;
  if (R == 1 && width == kPanel) {
    dot64(a, K, panel, kPanel, out);  // one row: two k at a time for eight FMA chains
    return;
  }
  for (; j + 16 * V <= width; j += 16 * V) block_rows<R, V>(a, lda, K, panel + j, width, out + j, ldo);
  for (; j + 16 <= width; j += 16) block_rows<R, 1>(a, lda, K, panel + j, width, out + j, ldo);
  for (; j < width; ++j) {  // the last width % 16 columns
    for (int r = 0; r < R; ++r) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += a[r * lda + k] * panel[k * width + j];
      out[r * ldo + j] = s;
    }
  }
}

// Panel by panel, every block of rows with each: a panel (K x 64 floats, 128 KB for K 512)
// stays in cache while all rows use it; rows outside panels re-read a matrix larger than the
// cache once per block of rows (batch 16 of an H 512 LSTM step: 1.3 ms).
template <int V>
__attribute__((always_inline)) inline void rows_times_panels_impl(const float* a, int64_t rows, int64_t K, int64_t lda,
                                                                  const float* panels, int64_t cols, float* out,
                                                                  int64_t ldo) {
  for (int64_t c = 0; c < cols; c += kPanel) {
    const float* panel = panels + c * K;  // every earlier panel is kPanel wide
    const int64_t width = cols - c < kPanel ? cols - c : kPanel;
    int64_t n = 0;
    for (; n + 4 <= rows; n += 4) rows_panel<4, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo);
    switch (rows - n) {
      case 3: rows_panel<3, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo); break;
      case 2: rows_panel<2, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo); break;
      case 1: rows_panel<1, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo); break;
      default: break;
    }
  }
}

// One variant per ISA, picked at run time below: the register blocks differ (target_clones
// compiles one source for all, and its AVX2 clone had no FMA).
__attribute__((target("avx512f"))) void rows_times_panels_avx512(const float* a, int64_t rows, int64_t K, int64_t lda,
                                                                 const float* panels, int64_t cols, float* out,
                                                                 int64_t ldo) {
  rows_times_panels_impl<4>(a, rows, K, lda, panels, cols, out, ldo);
}

__attribute__((target("avx2,fma"))) void rows_times_panels_avx2(const float* a, int64_t rows, int64_t K, int64_t lda,
                                                               const float* panels, int64_t cols, float* out,
                                                               int64_t ldo) {
  rows_times_panels_impl<1>(a, rows, K, lda, panels, cols, out, ldo);
}

void rows_times_panels_plain(const float* a, int64_t rows, int64_t K, int64_t lda, const float* panels, int64_t cols,
                             float* out, int64_t ldo) {
  rows_times_panels_impl<1>(a, rows, K, lda, panels, cols, out, ldo);
}

}  // namespace

std::vector<float> pack_column_panels(const float* b, int64_t K, int64_t cols, int64_t ldb) {
  std::vector<float> panels(static_cast<size_t>(K * cols));
  float* dst = panels.data();
  for (int64_t c = 0; c < cols; c += kPanel) {
    const int64_t width = cols - c < kPanel ? cols - c : kPanel;
    for (int64_t k = 0; k < K; ++k, dst += width) {
      for (int64_t j = 0; j < width; ++j) dst[j] = b[k * ldb + c + j];
    }
  }
  return panels;
}

void rows_times_panels(const float* a, int64_t rows, int64_t K, int64_t lda, const float* panels, int64_t cols,
                       float* out, int64_t ldo) {
  static const int isa = __builtin_cpu_supports("avx512f")                                    ? 2
                         : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                                            : 0;
  if (isa == 2) {
    rows_times_panels_avx512(a, rows, K, lda, panels, cols, out, ldo);
  } else if (isa == 1) {
    rows_times_panels_avx2(a, rows, K, lda, panels, cols, out, ldo);
  } else {
    rows_times_panels_plain(a, rows, K, lda, panels, cols, out, ldo);
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
