// Value: what flows along a graph edge — a tensor, a sequence of tensors (ONNX sequence ops),
// or an empty optional.
#pragma once

#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {

struct Value {
  enum class Kind { kNone, kTensor, kSequence };
  Kind kind = Kind::kNone;
  Tensor tensor;
  std::vector<Tensor> sequence;
  DType sequence_dtype = DType::kUndefined;  // element type of an (possibly empty) sequence

  Value() = default;
  Value(Tensor t) : kind(Kind::kTensor), tensor(std::move(t)) {}  // NOLINT: implicit
  static Value make_sequence(std::vector<Tensor> s, DType elem) {
    Value v;
    v.kind = Kind::kSequence;
    v.sequence = std::move(s);
    v.sequence_dtype = elem;
    return v;
  }
  bool is_tensor() const { return kind == Kind::kTensor; }
  bool is_sequence() const { return kind == Kind::kSequence; }
  bool is_none() const { return kind == Kind::kNone; }
};

}  // namespace pyflame_rt
