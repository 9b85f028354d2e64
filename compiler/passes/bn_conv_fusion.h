// Folds an inference BatchNormalization into the Conv that reads it, the case conv_bn_fusion
// cannot take: a BatchNorm after an activation (Conv -> Relu -> BatchNorm -> Conv, as in
// 1-D audio embedding models) is a per-channel scale s and shift t of the next Conv's input, so
// W'[o,i,k] = W[o,i,k] * s[c(o,i)] and B'[o] = B[o] + sum_{i,k} W[o,i,k] * t[c(o,i)].
// Legal only when the Conv pads nothing (a padded border would see t where the BatchNorm's
// output has zeros), the BatchNorm's output is read by that Conv alone, and weights and
// statistics are f32 constants.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class BnConvFusion : public Pass {
 public:
  const char* name() const override { return "bn_conv_fusion"; }
  const char* summary() const override { return "fold BatchNormalization into the unpadded Conv that reads it"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
