// Numpy broadcasting walked row by row, shared by the native ops with broadcast operands
// (broadcast_op: Expand, Tile, Where, Pad; compare_op): each operand's row is found through its
// broadcast strides (0 on a broadcast axis), so there is no per-element index arithmetic.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "graph/shape.h"

namespace pyflame_rt {
namespace cpu {

// Numpy broadcasting of `a` and `b`; false when they do not broadcast.
inline bool broadcast(const Dims& a, const Dims& b, Dims* out) {
  size_t r = std::max(a.size(), b.size());
  out->assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    (*out)[i] = da == 1 ? db : da;
  }
  return true;
}

// Element strides of `in` aligned to the last axes of `out` (0 where `in` is broadcast).
inline std::vector<int64_t> broadcast_strides(const Dims& in, const Dims& out) {
  std::vector<int64_t> s(out.size(), 0);
  int64_t stride = 1;
  for (size_t k = 0; k < in.size(); ++k) {
    size_t i = in.size() - 1 - k, o = out.size() - 1 - k;
    s[o] = in[i] == 1 ? 0 : stride;
    stride *= in[i];
  }
  return s;
}

// Calls f(row, offsets) for every row of `out` (all axes but the last), with each operand's
// element offset of that row's first element.
template <typename F>
void for_each_row(const Dims& out, const std::vector<std::vector<int64_t>>& strides, F f) {
  const size_t rank = out.size();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < rank; ++d) rows *= out[d];
  std::vector<int64_t> idx(rank, 0), off(strides.size(), 0);
  for (int64_t r = 0; r < rows; ++r) {
    f(r, off);
    for (size_t d = rank - 1; d-- > 0;) {  // odometer over the leading axes
      for (size_t k = 0; k < strides.size(); ++k) off[k] += strides[k][d];
      if (++idx[d] < out[d]) break;
      for (size_t k = 0; k < strides.size(); ++k) off[k] -= strides[k][d] * out[d];
      idx[d] = 0;
    }
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
