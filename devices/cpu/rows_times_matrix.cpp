#include "devices/cpu/rows_times_matrix.h"

#include <cstddef>


namespace pyflame_rt {
namespace cpu {

namespace {

// 16 floats in GCC's vector extension: one AVX-512 register. A kernel whose accumulators GCC
// keeps in memory is slow (a store and a reload on every k: 5.7 us a step for H 128, stop 15):
// the blocks below unroll their accumulator arrays into registers (objdump of this file: no
// vector register spilled in the AVX-512 and AVX2 variants; the plain one spills).
typedef float Vec16 __attribute__((vector_size(64)));
// 8 floats: one AVX2 register. The AVX2 variant's blocks are made of these: its Vec16 blocks
// were split into halves in memory (ymm accumulators spilled on every k).
typedef float Vec8 __attribute__((vector_size(32)));

// Vectors in a signature change the calling convention between targets (-Wpsabi); these
// helpers are always inlined into each variant, so no call ever passes one.
#pragma GCC diagnostic ignored "-Wpsabi"

template <class Vec>
__attribute__((always_inline)) inline Vec load(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

template <class Vec>
__attribute__((always_inline)) inline void store(float* p, Vec v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

// Always inlined: a call would compile them for the baseline target, not the variant's.
// out[0:64] = a[0:K] · b[0:K, 0:64] on AVX-512: four accumulators, two k at a time (eight
// independent FMA chains, enough to cover the FMA latency).
__attribute__((always_inline)) inline void dot64(const float* a, int64_t K, const float* b, int64_t ldb, float* out) {
  Vec16 s0 = {}, s1 = {}, s2 = {}, s3 = {}, t0 = {}, t1 = {}, t2 = {}, t3 = {};
  int64_t k = 0;
  for (; k + 1 < K; k += 2) {
    const float* b0 = b + k * ldb;
    const float* b1 = b0 + ldb;
    const float a0 = a[k], a1 = a[k + 1];
    s0 += a0 * load<Vec16>(b0);
    s1 += a0 * load<Vec16>(b0 + 16);
    s2 += a0 * load<Vec16>(b0 + 32);
    s3 += a0 * load<Vec16>(b0 + 48);
    t0 += a1 * load<Vec16>(b1);
    t1 += a1 * load<Vec16>(b1 + 16);
    t2 += a1 * load<Vec16>(b1 + 32);
    t3 += a1 * load<Vec16>(b1 + 48);
  }
  if (k < K) {
    const float* b0 = b + k * ldb;
    const float a0 = a[k];
    s0 += a0 * load<Vec16>(b0);
    s1 += a0 * load<Vec16>(b0 + 16);
    s2 += a0 * load<Vec16>(b0 + 32);
    s3 += a0 * load<Vec16>(b0 + 48);
  }
  store<Vec16>(out, s0 + t0);
  store<Vec16>(out + 16, s1 + t1);
  store<Vec16>(out + 32, s2 + t2);
  store<Vec16>(out + 48, s3 + t3);
}

// R rows x V vectors of columns of out from one panel: each panel row read from memory serves
// R rows of a (a batch of R re-streamed the matrix R times before: batch 4 of an H 128 LSTM
// step took 10.2 us instead of 2.6). The R x V accumulators stay in registers: the constant
// trip counts unroll fully.
// Always inlined, like every helper here: a call would compile it for the baseline target, not
// the variant's.
template <class Vec, int R, int V>
__attribute__((always_inline)) inline void block_rows(const float* a, int64_t lda, int64_t K, const float* b,
                                                      int64_t ldb, float* out, int64_t ldo) {
  constexpr int L = sizeof(Vec) / sizeof(float);
  Vec acc[R][V] = {};
  for (int64_t k = 0; k < K; ++k) {
    Vec bv[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) bv[v] = load<Vec>(b + k * ldb + L * v);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const float ar = a[r * lda + k];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] += ar * bv[v];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) store<Vec>(out + r * ldo + L * v, acc[r][v]);
  }
}

// Columns per panel: four 16-float accumulators.
constexpr int64_t kPanel = 64;

// R rows (1 <= R <= 4) of the product with one panel (columns [c, c + width)), in blocks of V
// vectors (AVX-512: 4 x 16 columns, 16 of its 32 registers; AVX2: 2 x 8 columns, 8 of 16).
// One row takes the whole panel at once, for enough independent FMA chains.
template <class Vec, int R, int V>
__attribute__((always_inline)) inline void rows_panel(const float* a, int64_t lda, int64_t K, const float* panel,
                                                      int64_t width, float* out, int64_t ldo) {
  constexpr int L = sizeof(Vec) / sizeof(float);
  if (R == 1 && width == kPanel) {
    if (L == 16) {
      dot64(a, K, panel, kPanel, out);
    } else {
      block_rows<Vec, 1, kPanel / L>(a, lda, K, panel, kPanel, out, ldo);
    }
    return;
  }
  int64_t j = 0;
  for (; j + L * V <= width; j += L * V) block_rows<Vec, R, V>(a, lda, K, panel + j, width, out + j, ldo);
  for (; j + L <= width; j += L) block_rows<Vec, R, 1>(a, lda, K, panel + j, width, out + j, ldo);
  for (; j < width; ++j) {  // the last width % L columns
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
template <class Vec, int V>
__attribute__((always_inline)) inline void rows_times_panels_impl(const float* a, int64_t rows, int64_t K, int64_t lda,
                                                                  const float* panels, int64_t cols, float* out,
                                                                  int64_t ldo) {
  for (int64_t c = 0; c < cols; c += kPanel) {
    const float* panel = panels + c * K;  // every earlier panel is kPanel wide
    const int64_t width = cols - c < kPanel ? cols - c : kPanel;
    int64_t n = 0;
    for (; n + 4 <= rows; n += 4) rows_panel<Vec, 4, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo);
    switch (rows - n) {
      case 3: rows_panel<Vec, 3, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo); break;
      case 2: rows_panel<Vec, 2, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo); break;
      case 1: rows_panel<Vec, 1, V>(a + n * lda, lda, K, panel, width, out + n * ldo + c, ldo); break;
      default: break;
    }
  }
}

// One variant per ISA, picked at run time below: the register blocks differ (target_clones
// compiles one source for all, and its AVX2 clone had no FMA).
__attribute__((target("avx512f"))) void rows_times_panels_avx512(const float* a, int64_t rows, int64_t K, int64_t lda,
                                                                 const float* panels, int64_t cols, float* out,
                                                                 int64_t ldo) {
  rows_times_panels_impl<Vec16, 4>(a, rows, K, lda, panels, cols, out, ldo);
}

__attribute__((target("avx2,fma"))) void rows_times_panels_avx2(const float* a, int64_t rows, int64_t K, int64_t lda,
                                                               const float* panels, int64_t cols, float* out,
                                                               int64_t ldo) {
  rows_times_panels_impl<Vec8, 2>(a, rows, K, lda, panels, cols, out, ldo);
}

void rows_times_panels_plain(const float* a, int64_t rows, int64_t K, int64_t lda, const float* panels, int64_t cols,
                             float* out, int64_t ldo) {
  rows_times_panels_impl<Vec8, 2>(a, rows, K, lda, panels, cols, out, ldo);
}

}  // namespace

Panels pack_column_panels(const float* b, int64_t K, int64_t cols, int64_t ldb) {
  Panels panels(static_cast<size_t>(K * cols));
  float* dst = panels.data();
  for (int64_t c = 0; c < cols; c += kPanel) {
    const int64_t width = cols - c < kPanel ? cols - c : kPanel;
    for (int64_t k = 0; k < K; ++k, dst += width) {
      for (int64_t j = 0; j < width; ++j) dst[j] = b[k * ldb + c + j];
    }
  }
  return panels;
}

Panels pack_transposed_panels(const float* bt, int64_t cols, int64_t K, int64_t ldbt) {
  Panels panels(static_cast<size_t>(K * cols));
  float* dst = panels.data();
  for (int64_t c = 0; c < cols; c += kPanel, dst += kPanel * K) {
    const int64_t width = cols - c < kPanel ? cols - c : kPanel;
    // Row c + j of bt is column j of the panel: read along it, write down the panel (one panel,
    // K x 64 floats, stays in cache while it fills).
    for (int64_t j = 0; j < width; ++j) {
      const float* src = bt + (c + j) * ldbt;
      for (int64_t k = 0; k < K; ++k) dst[k * width + j] = src[k];
    }
  }
  return panels;
}

void rows_times_panels(const float* a, int64_t rows, int64_t K, int64_t lda, const float* panels, int64_t cols,
                       float* out, int64_t ldo) {
  static const int isa = __builtin_cpu_supports("avx512f")                                    ? 2
                         : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                                            : 0;
  // One row (a batch-1 recurrent step) on AVX-512 too: alone, the AVX2 variant's eight ymm
  // chains matched dot64 (faster at H 64), but inside the LSTM (H 128, batch 1) the run took
  // 0.146-0.148 ms p50 on them against 0.128-0.131 on dot64.
  if (isa == 2) {
    rows_times_panels_avx512(a, rows, K, lda, panels, cols, out, ldo);
  } else if (isa >= 1) {
    rows_times_panels_avx2(a, rows, K, lda, panels, cols, out, ldo);
  } else {
    rows_times_panels_plain(a, rows, K, lda, panels, cols, out, ldo);
  }
}

}  // namespace cpu
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace cpu {

std::vector<std::pair<std::string, RowsTimesPanelsFn>> rows_times_panels_variants() {
  std::vector<std::pair<std::string, RowsTimesPanelsFn>> v = {{"plain", rows_times_panels_plain}};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v.push_back({"avx2", rows_times_panels_avx2});
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", rows_times_panels_avx512});
  return v;
}

}  // namespace cpu
}  // namespace pyflame_rt
