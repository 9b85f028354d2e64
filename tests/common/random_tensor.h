// Deterministic random float32 tensors for tests (values in [-1, 1), one stream per seed).
#pragma once

#include <cstdint>
#include <random>

#include "graph/tensor.h"

namespace pyflame_rt {

inline Tensor random_tensor(Dims dims, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor t(DType::kFloat32, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

}  // namespace pyflame_rt
