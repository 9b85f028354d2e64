// Moves an AveragePool ahead of the 1x1 convolution that feeds it: a 1x1, stride-1, unpadded
// convolution is a per-pixel linear map (bias included), and an unpadded average pool
// averages each window, so AveragePool(Conv(x)) = Conv(AveragePool(x)) exactly (up to the
// order of float additions). When the pool keeps fewer pixels than it reads, the convolution
// then runs on fewer pixels: DenseNet's transitions (BN -> Relu -> 1x1 Conv -> 2x2/2
// AveragePool) do a quarter of their multiply-adds. Needs a Conv (or a FusedConv with no
// activation and no residual yet) whose output only the pool reads, known 4-D shapes, and a
// pool with zero pads, ceil_mode 0 and no dilations, whose strides keep at most half the pixels.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class PoolBeforePointwiseConv : public Pass {
 public:
  const char* name() const override { return "pool_before_pointwise_conv"; }
  const char* summary() const override { return "run an AveragePool before the 1x1 Conv that feeds it"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
