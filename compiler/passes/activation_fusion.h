// Fuses the activation that follows a convolution or a bias-fused matmul into it (a oneDNN
// eltwise post-op): Relu, LeakyRelu, Clip with constant bounds, Sigmoid, Tanh, HardSwish,
// HardSigmoid, Elu, SiLU written as Mul(y, Sigmoid(y)), and PRelu with a constant slope that is
// one value (fused as LeakyRelu) or one per output channel.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ActivationFusion : public Pass {
 public:
  const char* name() const override { return "activation_fusion"; }
  const char* summary() const override { return "fuse the activation after a Conv or MatMul into it"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
