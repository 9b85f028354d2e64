// Rewrites an Einsum that is a batched matrix product into MatMul (the CPU device runs MatMul
// natively, Einsum only on the reference kernel): "...ik,...kj->...ij" becomes MatMul(a, b), and
// "...ik,...jk->...ij" MatMul(a, Transpose(b)) with the last two axes swapped. Both operands and
// the output must share the same batch letters in the same order (MaxViT's attention:
// "BGHID,BGHJD->BGHIJ" and "BGHIJ,BGHJD->BGHID"). Other equations stay Einsum.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class EinsumToMatMul : public Pass {
 public:
  const char* name() const override { return "einsum_to_matmul"; }
  const char* summary() const override { return "batched-matmul Einsum equations as MatMul"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
