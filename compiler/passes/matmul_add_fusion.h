// MatMul(A, W) followed by Add(bias), with W a constant 2-D matrix and bias a constant over
// its columns, becomes pyflame_rt.FusedMatMul(A, W, bias): the matmul writes the bias while it
// writes the result (and activation_fusion can then add an activation post-op).
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class MatMulAddFusion : public Pass {
 public:
  const char* name() const override { return "matmul_add_fusion"; }
  const char* summary() const override { return "fuse a bias Add into the MatMul before it"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
