#include "devices/cpu/loop_kernels.h"

#include <algorithm>
#include <cstring>

#include <cmath>
#include <limits>
#include <vector>

#include "devices/cpu/vector_math.h"
#include "devices/target_clones.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// The row forms (inner == 1) reduce contiguous memory: `omp simd` lets the compiler reorder
// the float sum into vector lanes (without it a sum does not vectorise).
#define PFRT_ROW_SUM(EXPR)                                   \
  for (int64_t o = o_begin; o < o_end; ++o) {              \
    const float* r = x + o * len;                          \
    float s = 0.f;                                         \
    _Pragma("omp simd reduction(+ : s)") for (int64_t k = 0; k < len; ++k) { \
      float v = r[k];                                      \
      s += (EXPR);                                         \
    }                                                      \
    y[o] = s;                                              \
  }

// The column forms (inner > 1) accumulate whole rows of `inner` values: vector lanes run along
// j, and the order of the sum over r is the sequential one.
#define PFRT_COL_REDUCE(INIT, UPDATE)                                          \
  for (int64_t o = o_begin; o < o_end; ++o) {                                \
    float* acc = y + o * inner;                                              \
    for (int64_t j = j_begin; j < j_end; ++j) acc[j] = (INIT);               \
    for (int64_t k = 0; k < len; ++k) {                                      \
      const float* row = x + (o * len + k) * inner;                          \
      _Pragma("omp simd") for (int64_t j = j_begin; j < j_end; ++j) {        \
        float v = row[j];                                                    \
        float a = acc[j];                                                    \
        acc[j] = (UPDATE);                                                   \
      }                                                                      \
    }                                                                        \
  }

PFRT_TARGET_CLONES
void reduce_simple(ReduceKind kind, const float* x, float* y, int64_t len, int64_t inner, int64_t o_begin,
                   int64_t o_end, int64_t j_begin, int64_t j_end) {
  const float inf = std::numeric_limits<float>::infinity();
  if (inner == 1) {
    switch (kind) {
      case ReduceKind::kSum: case ReduceKind::kMean: case ReduceKind::kLogSum: PFRT_ROW_SUM(v) break;
      case ReduceKind::kL1: PFRT_ROW_SUM(v < 0.f ? -v : v) break;
      case ReduceKind::kL2: case ReduceKind::kSumSquare: PFRT_ROW_SUM(v * v) break;
      case ReduceKind::kMax:
        for (int64_t o = o_begin; o < o_end; ++o) {
          const float* r = x + o * len;
          float m = -inf;
          _Pragma("omp simd reduction(max : m)") for (int64_t k = 0; k < len; ++k) m = r[k] > m ? r[k] : m;
          y[o] = m;
        }
        break;
      case ReduceKind::kMin:
        for (int64_t o = o_begin; o < o_end; ++o) {
          const float* r = x + o * len;
          float m = inf;
          _Pragma("omp simd reduction(min : m)") for (int64_t k = 0; k < len; ++k) m = r[k] < m ? r[k] : m;
          y[o] = m;
        }
        break;
      case ReduceKind::kLogSumExp: break;  // reduce_f32 handles it
    }
    return;
  }
  switch (kind) {
    case ReduceKind::kSum: case ReduceKind::kMean: case ReduceKind::kLogSum: PFRT_COL_REDUCE(0.f, a + v) break;
    case ReduceKind::kL1: PFRT_COL_REDUCE(0.f, a + (v < 0.f ? -v : v)) break;
    case ReduceKind::kL2: case ReduceKind::kSumSquare: PFRT_COL_REDUCE(0.f, a + v * v) break;
    case ReduceKind::kMax: PFRT_COL_REDUCE(-inf, v > a ? v : a) break;
    case ReduceKind::kMin: PFRT_COL_REDUCE(inf, v < a ? v : a) break;
    case ReduceKind::kLogSumExp: break;
  }
}

#undef PFRT_ROW_SUM
#undef PFRT_COL_REDUCE

}  // namespace

void reduce_f32(ReduceKind kind, const float* x, float* y, int64_t len, int64_t inner, int64_t o_begin,
                int64_t o_end, int64_t j_begin, int64_t j_end) {
  if (kind == ReduceKind::kLogSumExp) {
    // max, then sum of exp(v - max) through the vectorised exp, then log + max.
    reduce_simple(ReduceKind::kMax, x, y, len, inner, o_begin, o_end, j_begin, j_end);
    std::vector<float> row(static_cast<size_t>(inner == 1 ? len : j_end - j_begin));
    for (int64_t o = o_begin; o < o_end; ++o) {
      if (inner == 1) {
        float m = y[o];
        for (int64_t k = 0; k < len; ++k) row[static_cast<size_t>(k)] = x[o * len + k] - m;
        exp_inplace(row.data(), len);
        double s = 0;
        for (int64_t k = 0; k < len; ++k) s += row[static_cast<size_t>(k)];
        y[o] = static_cast<float>(std::log(s)) + m;
        continue;
      }
      std::vector<double> acc(row.size(), 0.0);
      for (int64_t k = 0; k < len; ++k) {
        const float* src = x + (o * len + k) * inner;
        for (int64_t j = j_begin; j < j_end; ++j) row[static_cast<size_t>(j - j_begin)] = src[j] - y[o * inner + j];
        exp_inplace(row.data(), j_end - j_begin);
        for (size_t j = 0; j < row.size(); ++j) acc[j] += row[j];
      }
      for (int64_t j = j_begin; j < j_end; ++j) {
        y[o * inner + j] = static_cast<float>(std::log(acc[static_cast<size_t>(j - j_begin)])) + y[o * inner + j];
      }
    }
    return;
  }
  reduce_simple(kind, x, y, len, inner, o_begin, o_end, j_begin, j_end);
  if (kind == ReduceKind::kMean || kind == ReduceKind::kL2 || kind == ReduceKind::kLogSum) {
    const float inv = 1.f / static_cast<float>(len);
    for (int64_t o = o_begin; o < o_end; ++o) {
      for (int64_t j = inner == 1 ? 0 : j_begin; j < (inner == 1 ? 1 : j_end); ++j) {
        float& v = y[o * inner + j];
        v = kind == ReduceKind::kMean ? v * inv : kind == ReduceKind::kL2 ? std::sqrt(v) : std::log(v);
      }
    }
  }
}

namespace {

// Columns of the softmax loop handled together: its per-column state lives on the stack (4 KB).
constexpr int64_t kSoftmaxColumns = 256;

// softmax_middle_f32 for one row o and at most kSoftmaxColumns columns starting at xo / yo:
// three passes over the len rows (max; exp(x - max) stored and summed; scaled), each one
// vectorised loop per row. Before: five calls per row and block of 64 columns (subtract, copy,
// exp, min, add), 43 us for [1, 200, 256].
PFRT_TARGET_CLONES
void softmax_columns(const float* xo, float* yo, int64_t len, int64_t inner, int64_t n, bool log) {
  alignas(64) float max[kSoftmaxColumns], sum[kSoftmaxColumns];
  std::copy(xo, xo + n, max);
  std::fill(sum, sum + n, 0.f);
  for (int64_t k = 1; k < len; ++k) {
    const float* row = xo + k * inner;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) max[j] = row[j] > max[j] ? row[j] : max[j];
  }
  for (int64_t k = 0; k < len; ++k) {
    const float* xr = xo + k * inner;
    float* yr = yo + k * inner;
    float lowest = 0.f;
    // Two loops rather than `log ? arg : e` inside one: GCC vectorises only one of the versions
    // it unswitches such a loop into.
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const float arg = xr[j] - max[j];  // <= 0: exp cannot overflow
        sum[j] += exp_core(clamp_exp_arg(arg));
        yr[j] = arg;
      }
    } else {
#pragma omp simd reduction(min : lowest)
      for (int64_t j = 0; j < n; ++j) {
        const float arg = xr[j] - max[j];
        const float e = exp_core(clamp_exp_arg(arg));
        sum[j] += e;
        yr[j] = e;
        lowest = arg < lowest ? arg : lowest;
      }
    }
    // exp_core clamps its argument at -87 (1.6e-38); below it the true exp is a denormal or 0,
    // which is what ONNX Runtime gives and what a `score > 0` threshold sees. The sum (>= 1,
    // the maximum's own term) is the same either way.
    if (lowest < -87.f) {
      for (int64_t j = 0; j < n; ++j) {
        const float arg = xr[j] - max[j];
        if (arg < -87.f) yr[j] = std::exp(arg);
      }
    }
  }
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) sum[j] = log ? -std::log(sum[j]) : 1.f / sum[j];
  for (int64_t k = 0; k < len; ++k) {
    float* yr = yo + k * inner;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) yr[j] = log ? yr[j] + sum[j] : yr[j] * sum[j];
  }
}

}  // namespace

PFRT_TARGET_CLONES
void softmax_last_f32(const float* x, float* y, int64_t rows, int64_t len, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * len;
    float* yr = y + r * len;
    // A NaN anywhere makes the row NaN through its own term and the sum, whatever max it leaves.
    float max = xr[0];
#pragma omp simd reduction(max : max)
    for (int64_t k = 1; k < len; ++k) max = xr[k] > max ? xr[k] : max;
    float sum = 0.f, lowest = 0.f;
    if (log) {
#pragma omp simd reduction(+ : sum)
      for (int64_t k = 0; k < len; ++k) {
        const float arg = xr[k] - max;
        sum += exp_core(clamp_exp_arg(arg));
        yr[k] = arg;
      }
    } else {
#pragma omp simd reduction(+ : sum) reduction(min : lowest)
      for (int64_t k = 0; k < len; ++k) {
        const float arg = xr[k] - max;
        const float e = exp_core(clamp_exp_arg(arg));
        sum += e;
        yr[k] = e;
        lowest = arg < lowest ? arg : lowest;
      }
      if (lowest < -87.f) {  // below exp_core's clamp: the denormal (or 0) std::exp gives
        for (int64_t k = 0; k < len; ++k) {
          const float arg = xr[k] - max;
          if (arg < -87.f) yr[k] = std::exp(arg);
        }
      }
    }
    if (log) {
      const float shift = -std::log(sum);
#pragma omp simd
      for (int64_t k = 0; k < len; ++k) yr[k] += shift;
    } else {
      const float scale = 1.f / sum;
#pragma omp simd
      for (int64_t k = 0; k < len; ++k) yr[k] *= scale;
    }
  }
}

void softmax_middle_f32(const float* x, float* y, int64_t len, int64_t inner, int64_t o_begin, int64_t o_end,
                        int64_t j_begin, int64_t j_end, bool log) {
  for (int64_t o = o_begin; o < o_end; ++o) {
    for (int64_t j = j_begin; j < j_end; j += kSoftmaxColumns) {
      softmax_columns(x + o * len * inner + j, y + o * len * inner + j, len, inner,
                      std::min(kSoftmaxColumns, j_end - j), log);
    }
  }
}

PFRT_TARGET_CLONES
void arg_reduce_f32(bool is_max, bool last, const float* x, int64_t* y, int64_t len, int64_t inner,
                    int64_t o_begin, int64_t o_end) {
  std::vector<float> best(static_cast<size_t>(inner));
  for (int64_t o = o_begin; o < o_end; ++o) {
    int64_t* idx = y + o * inner;
    const float* first = x + o * len * inner;
    for (int64_t j = 0; j < inner; ++j) {
      best[static_cast<size_t>(j)] = first[j];
      idx[j] = 0;
    }
    for (int64_t k = 1; k < len; ++k) {
      const float* row = first + k * inner;
      for (int64_t j = 0; j < inner; ++j) {
        float v = row[j], b = best[static_cast<size_t>(j)];
        bool better = is_max ? (last ? v >= b : v > b) : (last ? v <= b : v < b);
        best[static_cast<size_t>(j)] = better ? v : b;
        idx[j] = better ? k : idx[j];
      }
    }
  }
}

void strided_copy(const char* src, int64_t elem_size, const std::vector<int64_t>& dims,
                  const std::vector<int64_t>& strides, char* dst) {
  // Merge from the inside out: dim d folds into d+1 when stepping d jumps exactly over d+1.
  std::vector<int64_t> md, ms;
  for (size_t i = dims.size(); i-- > 0;) {
    if (dims[i] == 1) continue;
    if (!md.empty() && strides[i] == ms.back() * md.back()) {
      md.back() *= dims[i];
    } else {
      md.push_back(dims[i]);
      ms.push_back(strides[i]);
    }
  }
  if (md.empty()) {  // a single element
    std::memcpy(dst, src, static_cast<size_t>(elem_size));
    return;
  }
  std::reverse(md.begin(), md.end());
  std::reverse(ms.begin(), ms.end());
  const size_t rank = md.size();
  const int64_t inner = md.back(), inner_stride = ms.back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < rank; ++d) rows *= md[d];
  const int64_t row_bytes = inner * elem_size;
#pragma omp parallel for schedule(static) if (rows * inner * elem_size >= (1 << 18) && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offset = 0, rest = r;
    for (size_t d = rank - 1; d-- > 0;) {  // row index -> source offset of its first element
      offset += (rest % md[d]) * ms[d];
      rest /= md[d];
    }
    const char* s = src + offset * elem_size;
    char* o = dst + r * row_bytes;
    if (inner_stride == 1) {
      std::memcpy(o, s, static_cast<size_t>(row_bytes));
    } else if (elem_size == 4) {
      const float* sf = reinterpret_cast<const float*>(s);
      float* of = reinterpret_cast<float*>(o);
      for (int64_t j = 0; j < inner; ++j) of[j] = sf[j * inner_stride];
    } else {
      for (int64_t j = 0; j < inner; ++j) {
        std::memcpy(o + j * elem_size, s + j * inner_stride * elem_size, static_cast<size_t>(elem_size));
      }
    }
  }
}

namespace {

// The inner loop with the block size known to the compiler: one vector per position.
template <int64_t kBlock, bool kRelu>
inline void channel_affine_block(const float* x, float* y, const float* s, const float* t, int64_t positions) {
  float sv[kBlock], tv[kBlock];
  for (int64_t i = 0; i < kBlock; ++i) sv[i] = s[i], tv[i] = t[i];
  for (int64_t p = 0; p < positions; ++p) {
#pragma omp simd
    for (int64_t i = 0; i < kBlock; ++i) {
      const float v = x[p * kBlock + i] * sv[i] + tv[i];
      y[p * kBlock + i] = kRelu ? std::max(v, 0.f) : v;
    }
  }
}

}  // namespace

PFRT_TARGET_CLONES
void channel_affine_f32(const float* x, float* y, const float* s, const float* t, int64_t positions, int64_t block,
                        bool relu) {
  if (block == 16) {
    relu ? channel_affine_block<16, true>(x, y, s, t, positions) : channel_affine_block<16, false>(x, y, s, t, positions);
  } else if (block == 8) {
    relu ? channel_affine_block<8, true>(x, y, s, t, positions) : channel_affine_block<8, false>(x, y, s, t, positions);
  } else if (block == 1) {
    const float s0 = s[0], t0 = t[0];
    if (relu) {
#pragma omp simd
      for (int64_t p = 0; p < positions; ++p) y[p] = std::max(x[p] * s0 + t0, 0.f);
    } else {
#pragma omp simd
      for (int64_t p = 0; p < positions; ++p) y[p] = x[p] * s0 + t0;
    }
  } else {
    // Any other width: a row of channels-last data (block = the channel count).
    for (int64_t p = 0; p < positions; ++p) {
      const float* xr = x + p * block;
      float* yr = y + p * block;
      if (relu) {
#pragma omp simd
        for (int64_t i = 0; i < block; ++i) yr[i] = std::max(xr[i] * s[i] + t[i], 0.f);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < block; ++i) yr[i] = xr[i] * s[i] + t[i];
      }
    }
  }
}

namespace {

template <int64_t kBlock>
inline void channel_mean_block(const float* x, float* mean, int64_t positions) {
  float acc[4][kBlock] = {};  // four running sums: independent adds the compiler vectorises
  int64_t p = 0;
  for (; p + 4 <= positions; p += 4) {
    for (int r = 0; r < 4; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < kBlock; ++i) acc[r][i] += x[(p + r) * kBlock + i];
    }
  }
  for (; p < positions; ++p) {
#pragma omp simd
    for (int64_t i = 0; i < kBlock; ++i) acc[0][i] += x[p * kBlock + i];
  }
  const float scale = 1.f / static_cast<float>(positions);
  for (int64_t i = 0; i < kBlock; ++i) mean[i] = (acc[0][i] + acc[1][i] + acc[2][i] + acc[3][i]) * scale;
}

}  // namespace

PFRT_TARGET_CLONES
void channel_mean_f32(const float* x, float* mean, int64_t positions, int64_t block) {
  if (block == 16) return channel_mean_block<16>(x, mean, positions);
  if (block == 8) return channel_mean_block<8>(x, mean, positions);
  for (int64_t i = 0; i < block; ++i) {
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t p = 0; p < positions; ++p) s += x[p * block + i];
    mean[i] = s / static_cast<float>(positions);
  }
}

PFRT_TARGET_CLONES
void rows_sum_f32(const float* x, float* sum, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * width;
#pragma omp simd
    for (int64_t i = 0; i < width; ++i) sum[i] += row[i];
  }
}

PFRT_TARGET_CLONES
void scale_row_f32(const float* x, float* y, const float* s, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s[i];
}

PFRT_TARGET_CLONES
float dot_f32(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace cpu
}  // namespace pyflame_rt
