// Turns structured sparsity into speed: output channels of a convolution that are exactly zero
// (all-zero weight rows, zero bias, an activation with f(0) = 0) are removed from the
// convolution, and the matching input channels from the convolutions that read it. A model
// pruned by channel (pyflame_rt.compress.prune(structured=True), torch's ln_structured followed
// by zeroing the BatchNorm shift) keeps its shapes in ONNX, so every runtime runs it; here its
// convolutions become smaller dense ones.
//
// A zero channel is removed only where its absence is exact: every reader of the convolution's
// output is a convolution reading it as its data input, either a group-1 convolution (the
// channel's input slice of the weights goes) or a depthwise one whose channel is zero in turn
// (zero bias, f(0) = 0), whose readers follow the same rule. A zero channel that reaches
// anything else (an Add, a Concat, a graph output, a padded non-zero constant) stays.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ZeroChannelPruning : public Pass {
 public:
  const char* name() const override { return "zero_channel_pruning"; }
  const char* summary() const override {
    return "remove all-zero output channels of convolutions and the matching inputs of their readers";
  }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
