// Elementwise float math over contiguous arrays for native ops (GRU gates), written as plain
// branch-free loops the compiler vectorises (no libm calls, no -ffast-math): exp by range
// reduction to [-ln2/2, ln2/2] and a degree-7 polynomial; tanh by an odd polynomial near 0 and
// through exp elsewhere. Accuracy is tested against libm (a few float ulps).
#pragma once

#include <cstdint>

namespace pyflame_rt {
namespace cpu {

void exp_inplace(float* x, int64_t n);
void sigmoid_inplace(float* x, int64_t n);
void tanh_inplace(float* x, int64_t n);
// erf: a Taylor series below 0.5, Abramowitz & Stegun 7.1.26 above (error below 3e-7).
void erf_inplace(float* x, int64_t n);
// x * sigmoid(x) (SiLU / Swish), to ~1e-6 relative: an AVX2 kernel with a degree-6 exp and a
// refined reciprocal (a third of the time of oneDNN's swish post-op on AVX2); a plain loop
// elsewhere. The _parallel form splits a large buffer across the calling thread's OpenMP team.
void silu_inplace(float* x, int64_t n);
void silu_inplace_parallel(float* x, int64_t n);

}  // namespace cpu
}  // namespace pyflame_rt
