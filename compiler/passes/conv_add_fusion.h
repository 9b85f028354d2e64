// Residual fusion: Add(Conv(x), z) with equal static shapes becomes FusedConv(x, W, B, z), so
// the convolution adds z while it writes its output (oneDNN's sum post-op) instead of a second
// pass over memory. A following activation is fused by conv_activation_fusion.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ConvAddFusion : public Pass {
 public:
  const char* name() const override { return "conv_add_fusion"; }
  const char* summary() const override { return "fuse a residual Add into the Conv feeding it"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
