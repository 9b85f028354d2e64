// Deterministic random tensors for tests, one stream per seed: float32 in [-1, 1), or
// integers of type T in [lo, hi].
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

template <typename T>
Tensor random_ints(Dims dims, int lo, int hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(lo, hi);
  Tensor t(DTypeOf<T>::value, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(u(rng));
  return t;
}

}  // namespace pyflame_rt
