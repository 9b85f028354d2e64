#include "devices/cpu/vector_math.h"

#include <algorithm>
#include <cstring>

namespace pyflame_rt {
namespace cpu {

namespace {

// exp(x) for x already clamped to [-87, 88]: x = k ln2 + r, exp(x) = 2^k e^r.
inline float exp_core(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // ln2 split so k*ln2_hi is exact
  float k = static_cast<float>(static_cast<int>(x * log2e + (x >= 0 ? 0.5f : -0.5f)));
  float r = x - k * ln2_hi - k * ln2_lo;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline float clamp_exp_arg(float x) { return std::min(std::max(x, -87.0f), 88.0f); }

}  // namespace

// Each loop is compiled per ISA and picked at load time.
__attribute__((target_clones("avx512f", "avx2", "default"))) void exp_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = exp_core(clamp_exp_arg(x[i]));
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void sigmoid_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + exp_core(clamp_exp_arg(-x[i])));
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void tanh_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    float a = std::min(std::abs(v), 9.0f);  // tanh(9) == 1 in float
    // |v| < 0.25: odd Taylor series (the exp form would cancel); beyond: 1 - 2/(e^{2a}+1).
    float v2 = v * v;
    float poly = v * (1.f + v2 * (-1.f / 3 + v2 * (2.f / 15 + v2 * (-17.f / 315 + v2 * (62.f / 2835)))));
    float e = exp_core(2.f * a);
    float big = 1.f - 2.f / (e + 1.f);
    x[i] = a < 0.25f ? poly : (v < 0 ? -big : big);
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
