// A residual connection of a QDQ model after qdq_conv_fusion:
//   QLinearConv -> DequantizeLinear -+
//                  DequantizeLinear(z_u8) -> Add -> [Relu] -> QuantizeLinear(u8)
// becomes one pyflame_rt.QLinearConvAdd: the int8 convolution adds the uint8 residual through
// oneDNN's sum post-op (its own scale and zero point), applies the ReLU and writes the final
// uint8 output directly, instead of four fp32 passes over the tensor. The convolution's own
// output quantization is kept as inputs 9 and 10 (the reference kernel reproduces the QDQ
// graph's rounding with it: devices/ref/kernels/quantization_fused.cpp).
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class QdqResidualFusion : public Pass {
 public:
  const char* name() const override { return "qdq_residual_fusion"; }
  const char* summary() const override { return "QLinearConv + DQ residual Add [+ Relu] + Q into QLinearConvAdd"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
