// QDQ -> native int8 matmul. A QDQ model (ours from pyflame_rt.quantization, ONNX Runtime's
// quantizer, a QAT export) writes an int8 fully connected layer as
//   DequantizeLinear(x_u8|s8) , DequantizeLinear(w_s8 const) [, bias] -> MatMul|Gemm [-> QuantizeLinear]
// which as written runs in fp32 on dequantized copies. This pass replaces each group by
//   - a standard QLinearMatMul when it is a MatMul without bias whose output is quantized, or
//   - a pyflame_rt.QMatMul otherwise (bias, Gemm, or an fp32 output: the last layer of a CNN),
// both run by oneDNN's int8 matmul (devices/cpu/int8_matmul.cpp). QMatMul's inputs:
//   0-5  a, a_scale, a_zero_point, b (int8 [K, N]), b_scale ([N] or scalar), b_zero_point (zeros)
//   6-7  y_scale, y_zero_point: the output's quantization, or empty for an fp32 output
//   8    bias: fp32 [N] in real units, or empty
// Gemm's transB weights are stored transposed ([K, N]) and alpha/beta folded into the scales and
// bias. Groups outside this (a run-time weight, non-zero weight zero points, per-row scales,
// transA) are left as they are and stay correct in fp32. Runs before constant folding, which
// would fold the weights' DequantizeLinear back into fp32 weights.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class QdqMatMulFusion : public Pass {
 public:
  const char* name() const override { return "qdq_matmul_fusion"; }
  const char* summary() const override { return "DQ -> MatMul/Gemm [-> Q] groups into int8 QLinearMatMul / QMatMul"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
