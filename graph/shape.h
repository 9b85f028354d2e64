// Shapes: concrete (std::vector<int64_t>) for tensors, possibly symbolic (Shape) for graph
// values whose dims are only known at run time ("batch", "seq") or not at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyflame_rt {

using Dims = std::vector<int64_t>;

// One dimension of a graph value: a known size, a named symbol, or unknown.
struct Dim {
  int64_t value = -1;   // >= 0 when known
  std::string symbol;   // non-empty for a named symbolic dim
  Dim() = default;
  Dim(int64_t v) : value(v) {}  // NOLINT: Dim d = 3;
  explicit Dim(std::string s) : symbol(std::move(s)) {}
  bool known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  std::string to_string() const;  // "3", "batch", "?"
};

// A graph value's shape. `rank_known == false` means even the rank is unknown.
struct Shape {
  std::vector<Dim> dims;
  bool rank_known = true;

  Shape() = default;
  explicit Shape(std::vector<Dim> d) : dims(std::move(d)) {}
  static Shape unknown_rank() { Shape s; s.rank_known = false; return s; }
  static Shape from_dims(const Dims& d);

  size_t rank() const { return dims.size(); }
  bool fully_known() const;
  std::string to_string() const;  // "[1,3,224,224]", "[batch,?,8]", "?"
  bool operator==(const Shape& o) const { return rank_known == o.rank_known && dims == o.dims; }
};

int64_t num_elements(const Dims& dims);
std::string dims_to_string(const Dims& dims);  // "[1,3,224,224]"

}  // namespace pyflame_rt
