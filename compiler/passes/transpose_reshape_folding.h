// Folds chains of layout-only ops: Transpose(Transpose(x)) becomes one Transpose with the
// composed permutation (or nothing, when it is the identity), and Reshape(Reshape(x)) becomes
// one Reshape when the outer target is a constant without 0 ("copy this dim") entries.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class TransposeReshapeFolding : public Pass {
 public:
  const char* name() const override { return "transpose_reshape_folding"; }
  const char* summary() const override { return "merge back-to-back Transposes and Reshapes"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
