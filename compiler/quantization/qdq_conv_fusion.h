// QDQ -> native int8 convolution. A QDQ model (ours from pyflame_rt.quantization, or another
// tool's: mode="qat") expresses an int8 convolution as
//   DequantizeLinear(x_u8) , DequantizeLinear(w_s8 const) [, bias] -> Conv -> QuantizeLinear(u8)
// which as written runs in fp32 on dequantized copies. This pass replaces each such group by one
// standard QLinearConv (u8 activations, s8 weights with one scale per output channel, int32
// bias in the accumulator's scale), which the CPU device runs on oneDNN's int8 convolution
// (devices/cpu/int8_conv.cpp). Groups outside what the kernel takes (weight zero points other
// than 0, int8 activations, a non-constant scale) are left as they are: they stay correct, in
// fp32. Runs before constant folding, which would otherwise fold the weights' DequantizeLinear
// back into fp32 weights.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class QdqConvFusion : public Pass {
 public:
  const char* name() const override { return "qdq_conv_fusion"; }
  const char* summary() const override { return "DQ -> Conv -> Q groups into int8 QLinearConv"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
