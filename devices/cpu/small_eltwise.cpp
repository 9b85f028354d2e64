#include "devices/cpu/small_eltwise.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <utility>

#include "devices/cpu/vector_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

std::atomic<uint64_t> g_runs{0};

// One loop per operation (the switch outside it), so each vectorises.
template <typename F>
void map(const float* x, float* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <typename F>
void zip(const float* a, const float* b, int64_t b_len, float* y, int64_t n, F f) {
  if (b_len == n) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (b_len == 1) {
    const float v = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], v);
  } else {
    for (int64_t r = 0; r < n; r += b_len) {
      for (int64_t i = 0; i < b_len; ++i) y[r + i] = f(a[r + i], b[i]);
    }
  }
}

}  // namespace

const float* plain_f32_data(const CpuValue* v) {
  if (!v) return nullptr;
  if (v->has_native) {
    return v->native.get_desc() == plain_desc(v->dims) ? static_cast<const float*>(v->native.get_data_handle())
                                                       : nullptr;
  }
  if (!v->has_plain || !v->plain.is_tensor() || v->plain.tensor.dtype() != DType::kFloat32) return nullptr;
  return v->plain.tensor.data<float>();
}

SmallActivation small_activation_of(const std::string& name) {
  using A = SmallActivation;
  static const std::pair<const char*, A> kNames[] = {
      {"Relu", A::kRelu}, {"LeakyRelu", A::kLeakyRelu}, {"Sigmoid", A::kSigmoid}, {"Tanh", A::kTanh},
      {"HardSwish", A::kHardSwish}, {"HardSigmoid", A::kHardSigmoid}, {"Clip", A::kClip}, {"Sqrt", A::kSqrt},
      {"Abs", A::kAbs}, {"Neg", A::kNeg}};
  for (const auto& [k, act] : kNames) {
    if (name == k) return act;
  }
  return A::kNone;
}

// As the reference kernels define them (devices/ref/kernels/unary.cpp), in float: NaN stays NaN
// (Clip's min-of-max, LeakyRelu's x >= 0 test), Sigmoid and Tanh within a few ulps of libm
// (vector_math.h).
void small_activation(SmallActivation act, const std::vector<float>& p, const float* x, float* y, int64_t n) {
  g_runs.fetch_add(1, std::memory_order_relaxed);
  auto param = [&](size_t i, float fallback) { return i < p.size() ? p[i] : fallback; };
  switch (act) {
    case SmallActivation::kRelu: map(x, y, n, [](float v) { return v < 0.f ? 0.f : v; }); break;
    case SmallActivation::kLeakyRelu: {
      const float alpha = param(0, 0.01f);
      map(x, y, n, [alpha](float v) { return v >= 0.f ? v : alpha * v; });
      break;
    }
    case SmallActivation::kClip: {
      const float lo = param(0, -3.4e38f), hi = param(1, 3.4e38f);
      map(x, y, n, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
      break;
    }
    case SmallActivation::kHardSigmoid: {
      const float alpha = param(0, 0.2f), beta = param(1, 0.5f);
      map(x, y, n, [alpha, beta](float v) { return std::max(0.f, std::min(1.f, alpha * v + beta)); });
      break;
    }
    case SmallActivation::kHardSwish:
      map(x, y, n, [](float v) { return v * std::max(0.f, std::min(1.f, v / 6.f + 0.5f)); });
      break;
    case SmallActivation::kSqrt: map(x, y, n, [](float v) { return std::sqrt(v); }); break;
    case SmallActivation::kAbs: map(x, y, n, [](float v) { return std::fabs(v); }); break;
    case SmallActivation::kNeg: map(x, y, n, [](float v) { return -v; }); break;
    case SmallActivation::kSigmoid:
    case SmallActivation::kTanh:  // vector_math's in-place kernels
      if (y != x) std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
      act == SmallActivation::kSigmoid ? sigmoid_inplace(y, n) : tanh_inplace(y, n);
      break;
    case SmallActivation::kNone: break;
  }
}

void small_binary(dnnl::algorithm alg, const float* a, const float* b, int64_t b_len, float* y, int64_t n) {
  g_runs.fetch_add(1, std::memory_order_relaxed);
  switch (alg) {
    case dnnl::algorithm::binary_add: zip(a, b, b_len, y, n, [](float u, float v) { return u + v; }); break;
    case dnnl::algorithm::binary_sub: zip(a, b, b_len, y, n, [](float u, float v) { return u - v; }); break;
    case dnnl::algorithm::binary_mul: zip(a, b, b_len, y, n, [](float u, float v) { return u * v; }); break;
    default: zip(a, b, b_len, y, n, [](float u, float v) { return u / v; }); break;
  }
}

uint64_t small_eltwise_runs() { return g_runs.load(std::memory_order_relaxed); }

}  // namespace cpu
}  // namespace pyflame_rt
