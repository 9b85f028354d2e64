// Per-ISA builds of the float GEMM inner loop (see gemm.h).
#include "devices/ref/kernels/gemm.h"

namespace pyflame_rt {

__attribute__((target_clones("avx512f", "avx2", "default"))) void axpy_f32(int64_t n, float a,
                                                                              const float* __restrict x,
                                                                              float* __restrict y) {
  for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
}

}  // namespace pyflame_rt
