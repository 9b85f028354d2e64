// Per-ISA builds of the float GEMM inner loop (see gemm.h).
#include "devices/ref/kernels/gemm.h"

#include "devices/target_clones.h"

namespace pyflame_rt {

PFRT_TARGET_CLONES void axpy_f32(int64_t n, float a,
                                                                              const float* __restrict x,
                                                                              float* __restrict y) {
  for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
}

}  // namespace pyflame_rt
