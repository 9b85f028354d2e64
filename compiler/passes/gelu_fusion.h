// Recognises GELU as PyTorch exports it before opset 20,
//   y = (x * (Erf(x / sqrt(2)) + 1)) * 0.5     (the constants in any operand order)
// and replaces it by one com.microsoft.Gelu node, which activation_fusion can then fold into
// the MatMul before it (oneDNN's exact erf GELU post-op).
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class GeluFusion : public Pass {
 public:
  const char* name() const override { return "gelu_fusion"; }
  const char* summary() const override { return "fuse the erf form of GELU into one Gelu node"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
