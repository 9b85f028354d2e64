// Folds an inference BatchNormalization into the Conv that feeds it: with
// k = scale / sqrt(var + eps), W' = W * k (per output channel) and B' = (B - mean) * k + bias.
// Needs constant f32 weights and statistics and a Conv output read only by the BatchNorm.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ConvBnFusion : public Pass {
 public:
  const char* name() const override { return "conv_bn_fusion"; }
  const char* summary() const override { return "fold BatchNormalization into the preceding Conv's weights"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
