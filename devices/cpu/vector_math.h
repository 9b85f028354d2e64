// Elementwise float math over contiguous arrays for native ops (GRU gates), written as plain
// branch-free loops the compiler vectorises (no libm calls, no -ffast-math): exp by range
// reduction to [-ln2/2, ln2/2] and a degree-7 polynomial; tanh by an odd polynomial near 0 and
// through exp elsewhere. Accuracy is tested against libm (a few float ulps).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace pyflame_rt {
namespace cpu {

// exp(x) for x already clamped to [-87, 88]: x = k ln2 + r, exp(x) = 2^k e^r. k is rounded by
// adding 1.5 * 2^23 (its integer then sits in the float's low mantissa bits, read back as bits):
// no float-to-int conversion and no branch, so a loop calling it vectorises (a NaN x gives a NaN
// r, hence NaN, with no undefined conversion). Inline, so that loops fusing it with other
// arithmetic (softmax_middle_f32) vectorise too.
inline float exp_core(float x) {
  const float log2e = 1.44269504088896341f, magic = 12582912.f;  // 1.5 * 2^23
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // ln2 split so k*ln2_hi is exact
  const float shifted = x * log2e + magic;
  const float k = shifted - magic;
  float r = x - k * ln2_hi - k * ln2_lo;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t k_bits;
  std::memcpy(&k_bits, &shifted, sizeof(k_bits));
  // shifted's bits are 0x4B400000 + k for |k| < 2^22.
  int32_t bits = static_cast<int32_t>(static_cast<uint32_t>(k_bits - 0x4B400000 + 127) << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline float clamp_exp_arg(float x) { return std::min(std::max(x, -87.0f), 88.0f); }

void exp_inplace(float* x, int64_t n);
void sigmoid_inplace(float* x, int64_t n);
void tanh_inplace(float* x, int64_t n);
// erf: a Taylor series below 0.5, Abramowitz & Stegun 7.1.26 above (error below 3e-7).
void erf_inplace(float* x, int64_t n);
// x * sigmoid(x) (SiLU / Swish), to ~1e-6 relative: AVX-512 or AVX2 kernels with a degree-6
// exp and a refined reciprocal (on AVX2 a third of the time of oneDNN's swish post-op); a plain
// loop elsewhere. The _parallel form splits a large buffer across the calling thread's OpenMP
// team.
void silu_inplace(float* x, int64_t n);
void silu_inplace_parallel(float* x, int64_t n);
// Each vector kernel by name, for tests on hosts that have it (silu_inplace picks the widest).
bool silu_avx512_supported();
bool silu_avx2_supported();
void silu_avx512(float* x, int64_t n);
void silu_avx2(float* x, int64_t n);

}  // namespace cpu
}  // namespace pyflame_rt
