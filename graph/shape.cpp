#include "graph/shape.h"

#include <limits>

namespace pyflame_rt {

std::string Dim::to_string() const {
  if (known()) return std::to_string(value);
  if (!symbol.empty()) return symbol;
  return "?";
}

Shape Shape::from_dims(const Dims& d) {
  Shape s;
  for (int64_t v : d) s.dims.emplace_back(v);
  return s;
}

bool Shape::fully_known() const {
  if (!rank_known) return false;
  for (const Dim& d : dims) {
    if (!d.known()) return false;
  }
  return true;
}

std::string Shape::to_string() const {
  if (!rank_known) return "?";
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i].to_string();
  }
  return s + "]";
}

int64_t num_elements(const Dims& dims) {
  // A zero anywhere makes the product 0 even when the other dims multiply past int64 (a
  // [2^40, 2^40, 0] tensor from a model file: found by fuzzing); otherwise a product that
  // overflows saturates (no allocated tensor has one: Tensor's constructor refuses it).
  for (int64_t d : dims) {
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n)) return std::numeric_limits<int64_t>::max();
  }
  return n;
}

std::string dims_to_string(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

}  // namespace pyflame_rt
