// Small helpers shared by reference kernels: axis handling, strides, broadcasting and
// element conversion. Header-only so kernels stay readable and inlinable.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "devices/ref/kernel.h"
#include "graph/checked_math.h"
#include "graph/memory_budget.h"

namespace pyflame_rt {

// Converts any numeric element to/from the type kernels compute in.
template <typename T>
inline double to_double(T v) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return static_cast<double>(static_cast<float>(v));
  } else {
    return static_cast<double>(v);
  }
}
template <typename T>
inline T from_double(double v) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    // Converting NaN or a value outside T's range is undefined (an integer ReduceMean over
    // no element is NaN; found by the kernel_run fuzzer under UBSan): NaN is 0, the rest
    // saturates at T's limits. T's max as a double rounds up (2^63 for int64), hence >=.
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
    if (std::isnan(v)) return T(0);
    if (v <= lo) return std::numeric_limits<T>::lowest();
    if (v >= hi) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(v);
  }
}
// int64_from_double (a double as int64: NaN 0, saturating) is in graph/checked_math.h.
// A rounded quantized value (QuantizeLinear, QLinearMatMul, ...) as the integer T: saturates at
// T's limits and NaN is T's lowest, as the reference QuantizeLinear has always given
// (std::max(lo, NaN) is lo). std::clamp keeps a NaN, and converting it is undefined
// (QLinearMatMul with a NaN scale; UBSan, kernel_run).
// For 64-bit T the limit rounds up to 2^64 (2^63) as a double, past T's range: clamping to it
// and converting was undefined too (QLinearMatMul into uint64; UBSan, kernel_run stop 17), so
// the limits are returned, not converted.
template <typename T>
T saturate_quantized(double q) {
  constexpr double lo = static_cast<double>(std::numeric_limits<T>::lowest());
  constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
  if (!(q > lo)) return std::numeric_limits<T>::lowest();  // NaN too
  if (q >= hi) return std::numeric_limits<T>::max();
  return static_cast<T>(q);
}

// Integer arithmetic wraps (two's complement, as ONNX Runtime and numpy give): signed overflow
// is undefined behaviour in C++ (PRelu of int32 INT_MIN by 7; UBSan, kernel_run), and so is a
// uint16 product past int's range after promotion. Computed in the unsigned type of the
// promoted operand, narrowed back. Floats and bool: the plain operation.
template <typename C, typename Op>
C wrapping(C a, C b, Op op) {
  if constexpr (std::is_integral_v<C> && !std::is_same_v<C, bool>) {
    using U = std::make_unsigned_t<decltype(+a)>;
    return static_cast<C>(op(static_cast<U>(a), static_cast<U>(b)));
  } else {
    return static_cast<C>(op(a, b));
  }
}
template <typename C>
C wrapping_add(C a, C b) { return wrapping(a, b, [](auto x, auto y) { return x + y; }); }
template <typename C>
C wrapping_sub(C a, C b) { return wrapping(a, b, [](auto x, auto y) { return x - y; }); }
template <typename C>
C wrapping_mul(C a, C b) { return wrapping(a, b, [](auto x, auto y) { return x * y; }); }

template <typename T>
constexpr bool is_half_v = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
template <typename T>
constexpr bool is_floating_v = std::is_floating_point_v<T> || is_half_v<T>;

// Normalises a possibly negative axis into [0, rank); errors name the node and the range.
inline Status normalize_axis(const KernelContext& ctx, int64_t axis, int64_t rank, int64_t* out) {
  if (axis < -rank || axis >= rank) {
    return ctx.error(StatusCode::kInvalidArgument, "axis ", axis, " is out of range for rank ",
                     rank, " (expected [", -rank, ", ", rank - 1, "])");
  }
  *out = axis < 0 ? axis + rank : axis;
  return Status::OK();
}

// Row-major strides in elements.
inline std::vector<int64_t> strides_of(const Dims& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i) {
    s[static_cast<size_t>(i)] = s[static_cast<size_t>(i) + 1] * dims[static_cast<size_t>(i) + 1];
  }
  return s;
}

// Products of the dims before / after `axis`: the outer and inner extents of an axis loop.
inline int64_t outer_size(const Dims& dims, int64_t axis) {
  int64_t n = 1;
  for (int64_t d = 0; d < axis; ++d) n *= dims[static_cast<size_t>(d)];
  return n;
}
inline int64_t inner_size(const Dims& dims, int64_t axis) {
  int64_t n = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) n *= dims[d];
  return n;
}

// Advances a row-major multi-index over `dims`: the odometer step of every N-d loop.
inline void next_index(std::vector<int64_t>& idx, const Dims& dims) {
  for (size_t d = idx.size(); d-- > 0;) {
    if (++idx[d] < dims[d]) return;
    idx[d] = 0;
  }
}

// Numpy-style multidirectional broadcast of two shapes.
inline Status broadcast_dims(const KernelContext& ctx, const Dims& a, const Dims& b, Dims* out) {
  size_t rank = std::max(a.size(), b.size());
  Dims r(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return ctx.error(StatusCode::kInvalidArgument, "shapes ", dims_to_string(a), " and ",
                       dims_to_string(b), " cannot be broadcast (dim ", i, ": ", da, " vs ", db, ")");
    }
    r[i] = da == 1 ? db : da;
  }
  *out = r;
  return Status::OK();
}

// For each flat index of `out_dims`, the flat index into a tensor of `in_dims` broadcast to it.
// The map is 8 bytes per output element, often beside an output of fewer bytes: it is charged
// to the run's budget before it is built and for as long as it lives (std::bad_alloc past the
// limit, which the reference device reports as kResourceExhausted). A constant Expand of one
// float to [2^31] filled a 16 GB map past a 64 MB memory_limit_mb at constant folding
// (kernel_run stop 18: out of memory); until stop 19 the charge ended when the map was
// returned, so a kernel could hold about twice its limit.
class BroadcastIndexMap {
 public:
  BroadcastIndexMap() = default;  // no map (inputs already of the output's shape)
  BroadcastIndexMap(const Dims& in_dims, const Dims& out_dims)
      : charge_(num_elements(out_dims), sizeof(int64_t), "a broadcast index map"),
        map_(static_cast<size_t>(num_elements(out_dims))) {
    const size_t rank = out_dims.size(), off = rank - in_dims.size();
    const std::vector<int64_t> in_strides = strides_of(in_dims);
    std::vector<int64_t> idx(rank, 0);
    for (int64_t& src : map_) {
      src = 0;
      for (size_t d = off; d < rank; ++d) {
        if (in_dims[d - off] != 1) src += idx[d] * in_strides[d - off];
      }
      next_index(idx, out_dims);
    }
  }
  int64_t operator[](size_t i) const { return map_[i]; }

 private:
  ScratchCharge charge_;  // first: charged before the map is allocated, released after it
  std::vector<int64_t> map_;
};

inline BroadcastIndexMap broadcast_index_map(const Dims& in_dims, const Dims& out_dims) {
  return BroadcastIndexMap(in_dims, out_dims);
}

// Generic data movement (any dtype, strings included). Axes must already be normalised.
void copy_elements(const Tensor& src, int64_t src_off, Tensor& dst, int64_t dst_off, int64_t count);
Tensor take_along(const Tensor& t, int64_t axis, int64_t index);  // slice at index, axis removed
Tensor slice_along(const Tensor& t, int64_t axis, int64_t start, int64_t len);  // axis kept
// Stacks equally shaped tensors along a new axis; elem_dims/dtype describe an empty stack.
Tensor stack_along(const std::vector<Tensor>& parts, int64_t axis, const Dims& elem_dims, DType dtype);
Tensor concat_along(const std::vector<Tensor>& parts, int64_t axis);  // parts non-empty

// Converts a tensor of any numeric dtype into a new tensor of `to` (Cast semantics for
// numbers; strings are handled by the Cast kernel itself).
Tensor convert_tensor(const Tensor& t, DType to);
// Reshape's output dims for input dims `in` and target `shape` (0 copies the input's dim unless
// allow_zero, one -1 is inferred); false with the reason in `why` when the shape is invalid.
bool reshape_dims(const Dims& in, const std::vector<int64_t>& shape, bool allow_zero, Dims* out, std::string* why);
// Squeeze's output dims for input dims `in` and `axes` (empty: every dim of size 1); false with
// the reason in `why` when an axis is out of range or names a dim whose size is not 1.
bool squeeze_dims(const Dims& in, const std::vector<int64_t>& axes, Dims* out, std::string* why);
// Unsqueeze's output dims: `in` with a dim of size 1 at each of `axes` (axes of the output);
// false with the reason in `why` when an axis is out of range or given twice.
bool unsqueeze_dims(const Dims& in, const std::vector<int64_t>& axes, Dims* out, std::string* why);
// The same conversion for elements [begin, end) of `t` into `out` (same shape, out's dtype):
// the native Cast splits a large tensor over threads with it.
void convert_range(const Tensor& t, Tensor& out, int64_t begin, int64_t end);

}  // namespace pyflame_rt
