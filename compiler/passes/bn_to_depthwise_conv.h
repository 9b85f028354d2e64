// Turns an inference BatchNormalization that no convolution absorbs (conv_bn_fusion and
// bn_conv_fusion ran first) and whose output only an activation reads into a 1x1 depthwise
// Conv (weight s[c] = scale / sqrt(var + eps), bias t[c] = B - mean * s[c]), so that
// activation_fusion then folds the activation into it: BatchNorm + Relu in one pass over the
// data instead of two, inside the blocked layout region. DenseNet normalises the concatenated
// features before every 1x1 conv (BN -> Relu -> Conv): 62 such pairs, 17% of its run as two
// passes. ONNX Runtime's NCHWc transformer does the same. Only 4-D inputs with f32 constant
// statistics; any other BatchNorm is left to the device's own kernel.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class BnToDepthwiseConv : public Pass {
 public:
  const char* name() const override { return "bn_to_depthwise_conv"; }
  const char* summary() const override { return "BatchNormalization read by an activation as a 1x1 depthwise Conv"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
