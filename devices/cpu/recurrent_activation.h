// The activation functions of ONNX's recurrent ops (RNN, GRU, LSTM: the `activations`,
// `activation_alpha` and `activation_beta` attributes) in float over contiguous rows, for our
// recurrent loop (recurrent_loop.h). Sigmoid and Tanh are vector_math's; the others are plain
// loops. Names and parameters are read as the reference kernel (devices/ref/kernels/rnn.cpp)
// reads them: case-insensitive, alphas and betas consumed in order by the functions that take them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/node.h"

namespace pyflame_rt {
namespace cpu {

struct RecurrentActivation {
  enum class Kind { kSigmoid, kTanh, kRelu, kSoftsign, kSoftplus, kAffine, kLeakyRelu, kThresholdedRelu,
                    kScaledTanh, kHardSigmoid, kElu };
  Kind kind = Kind::kSigmoid;
  float alpha = 0.f, beta = 0.f;

  void apply(float* x, int64_t n) const;
};

// The node's activations: `defaults` (one direction's list) for each of `dirs` directions when
// the attribute is absent. False for an unknown name or a list of the wrong length (the
// reference kernel then names the problem).
bool parse_recurrent_activations(const Node& node, const std::vector<std::string>& defaults, int64_t dirs,
                                 std::vector<RecurrentActivation>* out);

// Whether every activation is the op's default (`defaults`, repeated per direction): what
// oneDNN's primitives compute.
bool default_recurrent_activations(const Node& node, const std::vector<std::string>& defaults);

}  // namespace cpu
}  // namespace pyflame_rt
