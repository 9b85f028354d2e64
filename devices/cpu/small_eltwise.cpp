#include "devices/cpu/small_eltwise.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

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

bool has_small_activation(const std::string& name) {
  static const char* kNames[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid",
                                 "Clip", "Sqrt", "Abs", "Neg"};
  for (const char* k : kNames) {
    if (name == k) return true;
  }
  return false;
}

// As the reference kernels define them (devices/ref/kernels/unary.cpp), in float: NaN stays NaN
// (Clip's min-of-max, LeakyRelu's x >= 0 test), Sigmoid and Tanh within a few ulps of libm
// (vector_math.h).
void small_activation(const std::string& name, const std::vector<float>& p, const float* x, float* y, int64_t n) {
  g_runs.fetch_add(1, std::memory_order_relaxed);
  auto param = [&](size_t i, float fallback) { return i < p.size() ? p[i] : fallback; };
  if (name == "Relu") {
    map(x, y, n, [](float v) { return v < 0.f ? 0.f : v; });
  } else if (name == "LeakyRelu") {
    const float alpha = param(0, 0.01f);
    map(x, y, n, [alpha](float v) { return v >= 0.f ? v : alpha * v; });
  } else if (name == "Clip") {
    const float lo = param(0, -3.4e38f), hi = param(1, 3.4e38f);
    map(x, y, n, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
  } else if (name == "HardSigmoid") {
    const float alpha = param(0, 0.2f), beta = param(1, 0.5f);
    map(x, y, n, [alpha, beta](float v) { return std::max(0.f, std::min(1.f, alpha * v + beta)); });
  } else if (name == "HardSwish") {
    map(x, y, n, [](float v) { return v * std::max(0.f, std::min(1.f, v / 6.f + 0.5f)); });
  } else if (name == "Sqrt") {
    map(x, y, n, [](float v) { return std::sqrt(v); });
  } else if (name == "Abs") {
    map(x, y, n, [](float v) { return std::fabs(v); });
  } else if (name == "Neg") {
    map(x, y, n, [](float v) { return -v; });
  } else {  // Sigmoid, Tanh: vector_math's in-place kernels
    if (y != x) std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
    name == "Sigmoid" ? sigmoid_inplace(y, n) : tanh_inplace(y, n);
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
