// Checked arithmetic on numbers a model chooses: dims, attributes, sizes and indices read from
// its tensors. Signed overflow and converting a double outside the target's range (NaN, an
// infinity, 1e30) are undefined behaviour in C++; the kernel_run fuzzer found both in a dozen
// kernels (docs/reliability.md). Kernels compute sizes through these and turn a failure into an
// error naming the node and the values; conversions saturate where ONNX has no error to give.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace pyflame_rt {

// A double as int64 where the value is not checked first (a computed power, a cast element, a
// size from scales, a sample count from a box): NaN is 0, the rest saturates at int64's limits.
// Callers that narrow further wrap as a C++ integer conversion does.
inline int64_t int64_from_double(double v) {
  constexpr double lo = static_cast<double>(std::numeric_limits<int64_t>::lowest());
  constexpr double hi = static_cast<double>(std::numeric_limits<int64_t>::max());  // 2^63, hence >=
  if (std::isnan(v)) return 0;
  if (v <= lo) return std::numeric_limits<int64_t>::lowest();
  if (v >= hi) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(v);
}

// A double used as an index once it has been floored or rounded (a sample position from a
// grid): clamped to [lo, hi], NaN is lo. Callers pick a range a few elements wider than the
// data, so that a clamped index still reads as outside it.
inline int64_t index_from_double(double v, int64_t lo, int64_t hi) {
  if (std::isnan(v) || v <= static_cast<double>(lo)) return lo;
  if (v >= static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(v);
}

// An int64 that remembers an overflow: a chain of size arithmetic (ConvTranspose's output size,
// Tile's dims) is written as usual and checked once at the end. Once overflowed, the value is
// meaningless and the flag stays set.
class CheckedInt64 {
 public:
  CheckedInt64(int64_t v = 0) : v_(v) {}  // NOLINT: CheckedInt64 x = dims[0];
  bool overflowed() const { return overflow_; }
  int64_t value() const { return v_; }  // meaningful only when !overflowed()

  friend CheckedInt64 operator+(CheckedInt64 a, CheckedInt64 b) {
    CheckedInt64 r;
    r.overflow_ = a.overflow_ || b.overflow_ || __builtin_add_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  friend CheckedInt64 operator-(CheckedInt64 a, CheckedInt64 b) {
    CheckedInt64 r;
    r.overflow_ = a.overflow_ || b.overflow_ || __builtin_sub_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  friend CheckedInt64 operator*(CheckedInt64 a, CheckedInt64 b) {
    CheckedInt64 r;
    r.overflow_ = a.overflow_ || b.overflow_ || __builtin_mul_overflow(a.v_, b.v_, &r.v_);
    return r;
  }
  CheckedInt64& operator+=(CheckedInt64 b) { return *this = *this + b; }
  CheckedInt64& operator-=(CheckedInt64 b) { return *this = *this - b; }
  CheckedInt64& operator*=(CheckedInt64 b) { return *this = *this * b; }

 private:
  int64_t v_ = 0;
  bool overflow_ = false;
};

// The sum of `values` (split sizes and the like), or false when it passes int64.
inline bool checked_sum(const std::vector<int64_t>& values, int64_t* out) {
  CheckedInt64 s = 0;
  for (int64_t v : values) s += v;
  *out = s.value();
  return !s.overflowed();
}

}  // namespace pyflame_rt
