// Value: what flows along a graph edge — a tensor, a sequence of tensors (ONNX sequence ops),
// a map (ai.onnx.ml: keys and values as two 1-D tensors of one length), a sequence of maps
// (ZipMap's output), or an empty optional.
#pragma once

#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {

struct Value {
  enum class Kind { kNone, kTensor, kSequence, kMap };
  Kind kind = Kind::kNone;
  Tensor tensor;
  std::vector<Tensor> sequence;
  DType sequence_dtype = DType::kUndefined;  // element type of an (possibly empty) sequence
  // kMap: map_keys (int64 or string) and map_values, 1-D, entry i is map_keys[i] -> map_values[i].
  Tensor map_keys, map_values;
  // A sequence of maps is a kSequence whose elements are here (kMap values), `sequence` empty:
  // the tensor sequences the sequence ops handle keep their plain vector of tensors.
  std::vector<Value> maps;

  Value() = default;
  Value(Tensor t) : kind(Kind::kTensor), tensor(std::move(t)) {}  // NOLINT: implicit
  static Value make_sequence(std::vector<Tensor> s, DType elem) {
    Value v;
    v.kind = Kind::kSequence;
    v.sequence = std::move(s);
    v.sequence_dtype = elem;
    return v;
  }
  static Value make_map(Tensor keys, Tensor values) {
    Value v;
    v.kind = Kind::kMap;
    v.map_keys = std::move(keys);
    v.map_values = std::move(values);
    return v;
  }
  static Value make_map_sequence(std::vector<Value> maps) {
    Value v;
    v.kind = Kind::kSequence;
    v.maps = std::move(maps);
    return v;
  }
  bool is_map() const { return kind == Kind::kMap; }
  bool is_map_sequence() const { return kind == Kind::kSequence && !maps.empty(); }
  bool is_tensor() const { return kind == Kind::kTensor; }
  bool is_sequence() const { return kind == Kind::kSequence; }
  bool is_none() const { return kind == Kind::kNone; }
};

}  // namespace pyflame_rt
