// Folds a per-channel scale and shift (with at most a Relu) that reads a channel Concat into
// the Concat: pyflame_rt.FusedConcat(X0, ..., Xn-1) {axis = 1, scale, shift, activation}
//   = activation(Concat(X0, ..., Xn-1, axis=1) * scale[c] + shift[c])
// The scale and shift come from the 1x1 depthwise Conv that bn_to_depthwise_conv made of a
// BatchNormalization (with activation_fusion's Relu on it), so it runs after both.
//
// DenseNet is pre-activation: every dense layer concatenates all earlier feature maps and
// normalises the result (Concat -> BN -> Relu -> Conv 1x1), 58 times in DenseNet-121, with
// scale and shift of its own each time. As two steps the concatenated tensor is written by
// the copy, read back and written again by the depthwise conv; fused, each input is read once
// and the output written once (the CPU device's kernel, copy_op.cpp). Only 4-D concats along
// channels whose output nothing else reads.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ConcatAffineFusion : public Pass {
 public:
  const char* name() const override { return "concat_affine_fusion"; }
  const char* summary() const override {
    return "channel Concat read only by a per-channel scale/shift (+Relu) as one pyflame_rt.FusedConcat";
  }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
