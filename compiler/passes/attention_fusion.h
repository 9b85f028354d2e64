// Recognises the scaled-dot-product core of multi-head attention between the Q/K/V
// projections and the output projection, and replaces it by one
// pyflame_rt.MultiHeadAttention(Q, K, V[, mask]) {num_heads, scale, batch_first}
// (semantics: devices/ref/kernels/attention_layout.h). Two layouts are matched:
//   batch_first (the textbook form), Q/K/V [B, T, E]:
//     Qh = Transpose(Reshape(Q, [B, L, H, Dh]), [0,2,1,3])   (V likewise)
//     Kt = Transpose(Reshape(K, [B, S, H, Dh]), [0,2,3,1])
//     O  = Reshape(Transpose(MatMul(Softmax(scores), Vh), [0,2,1,3]), ...)
//   sequence first (torch.nn.MultiheadAttention's export), Q/K/V [T, B, E]:
//     Qh = Transpose(Reshape(Q, [L, B*H, Dh]), [1,0,2])      (V likewise)
//     Kt = Transpose(Reshape(K, [S, B*H, Dh]), [1,2,0])
//     O  = Reshape(Transpose(MatMul(Softmax(scores), Vh), [1,0,2]), ...)
// with scores = MatMul(Qh, Kt) [+ mask] and constant scalar Mul/Div scales on Qh, Kt and/or
// the product (folded into `scale`). The closing Reshape stays and now reads the fused output
// [B, L, Ev] or [L, B, Ev]. Fuses only when every intermediate has a single reader, Q/K/V
// shapes are static float32 and the mask broadcasts to [B, H, L, S]; anything else is left as is.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class AttentionFusion : public Pass {
 public:
  const char* name() const override { return "attention_fusion"; }
  const char* summary() const override { return "fuse scaled-dot-product multi-head attention into MultiHeadAttention"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
