// Folds a squeeze-excite block into one node:
//   s = gate(Conv1x1(act(Conv1x1(GlobalAveragePool(X), W1, B1)), W2, B2));  Y = X * s
// becomes pyflame_rt.SqueezeExcite(X, W1, B1, W2, B2) {activation, activation_params, gate,
// gate_params} (the two 1x1 convs as activation_fusion left them: FusedConv with the inner
// activation, SiLU/Relu/none, and the gate, Sigmoid/HardSigmoid). EfficientNet has 16 such
// blocks, MobileNetV3 8: four steps each, three of them on a 1x1 tensor whose cost is all
// dispatch (a oneDNN convolution over 1x1 spatial takes 6-30 us); one step reads X for the
// pool and scales it (in place when X is not read again). Runs after activation_fusion.
// X of rank 3-5 (1-D to 3-D feature maps, the convs' kernels all 1), the pool a
// GlobalAveragePool or the same mean as a ReduceMean over every spatial axis with keepdims
// (1-D speaker models: ReduceMean over time).
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class SqueezeExciteFusion : public Pass {
 public:
  const char* name() const override { return "squeeze_excite_fusion"; }
  const char* summary() const override {
    return "GlobalAveragePool -> 1x1 conv -> 1x1 conv (gate) -> Mul as one pyflame_rt.SqueezeExcite";
  }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
