#include "devices/cpu/rows_times_matrix.h"

#include <cstddef>

#include "devices/target_clones.h"

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

// Columns per panel: four 16-float accumulators.
constexpr int64_t kPanel = 64;

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

PFRT_TARGET_CLONES
void rows_times_panels(const float* a, int64_t rows, int64_t K, int64_t lda, const float* panels, int64_t cols,
                       float* out, int64_t ldo) {
  for (int64_t n = 0; n < rows; ++n) {
    const float* an = a + n * lda;
    float* on = out + n * ldo;
    for (int64_t c = 0; c < cols; c += kPanel) {
      const float* panel = panels + c * K;  // every earlier panel is kPanel wide
      const int64_t width = cols - c < kPanel ? cols - c : kPanel;
      if (width == kPanel) {
        dot64(an, K, panel, kPanel, on + c);
        continue;
      }
      int64_t j = 0;
      for (; j + 16 <= width; j += 16) dot16(an, K, panel + j, width, on + c + j);
      for (; j < width; ++j) {  // the last width % 16 columns
        float s = 0;
        for (int64_t k = 0; k < K; ++k) s += an[k] * panel[k * width + j];
        on[c + j] = s;
      }
    }
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
