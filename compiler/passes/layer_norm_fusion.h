// Recognises LayerNorm written out in primitive ops (as PyTorch exports it before opset 17):
//   m = ReduceMean(x, axes=[-1]); d = Sub(x, m); v = ReduceMean(Pow(d, 2), axes=[-1])
//   y = Div(d, Sqrt(Add(v, eps))) [* gamma] [+ beta]
// and replaces it by one LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps).
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class LayerNormFusion : public Pass {
 public:
  const char* name() const override { return "layer_norm_fusion"; }
  const char* summary() const override { return "fuse a decomposed LayerNorm into LayerNormalization"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
