#include "devices/cpu/vector_math.h"

#include <cmath>

namespace pyflame_rt {
namespace cpu {

void sigmoid_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void tanh_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
}

}  // namespace cpu
}  // namespace pyflame_rt
