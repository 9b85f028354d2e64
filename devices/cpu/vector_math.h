// Elementwise float math over contiguous arrays for native ops (GRU gates).
//
// Plain libm calls: glibc's vectorised libmvec variants need -ffast-math and were measured
// to move GRU outputs near zero by ~1e-7 absolute, failing the ONNX GRU conformance cases
// (atol 1e-7); accuracy wins until a vectorised exp of our own is proven as accurate.
#pragma once

#include <cstdint>

namespace pyflame_rt {
namespace cpu {

void sigmoid_inplace(float* x, int64_t n);
void tanh_inplace(float* x, int64_t n);

}  // namespace cpu
}  // namespace pyflame_rt
