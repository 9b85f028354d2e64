// A bidirectional GRU or LSTM runs as two one-direction oneDNN primitives: these move each
// direction's tensors in and out of ONNX's [.., num_directions, ..] layouts.
#pragma once

#include <algorithm>

#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

// Direction d's slice of a float [dirs, ...] tensor, as [1, ...] (weights, biases, initial states).
// A one-direction tensor is itself (sharing its buffer, not a copy of the weights).
inline Tensor direction_slice(const Tensor& t, int64_t d) {
  if (t.dim(0) == 1) return t;
  Dims dims = t.dims();
  dims[0] = 1;
  Tensor s(DType::kFloat32, dims);
  const int64_t n = s.numel();
  std::copy(t.data<float>() + d * n, t.data<float>() + (d + 1) * n, s.data<float>());
  return s;
}

// One direction's output y_d [seq, 1, batch, H] into its slots of y [seq, 2, batch, H].
inline void write_direction_sequence(const Tensor& y_d, int64_t d, Tensor& y) {
  const int64_t seq = y_d.dim(0), step = y_d.numel() / std::max<int64_t>(seq, 1);
  for (int64_t t = 0; t < seq; ++t) {
    std::copy(y_d.data<float>() + t * step, y_d.data<float>() + (t + 1) * step, y.data<float>() + (2 * t + d) * step);
  }
}

// One direction's final state [1, batch, H] into its slot of [2, batch, H].
inline void write_direction_state(const Tensor& s_d, int64_t d, Tensor& s) {
  std::copy(s_d.data<float>(), s_d.data<float>() + s_d.numel(), s.data<float>() + d * s_d.numel());
}

}  // namespace cpu
}  // namespace pyflame_rt
