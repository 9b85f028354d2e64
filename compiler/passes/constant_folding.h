// Evaluates, once at compile time, every node whose inputs are all constants (initializers),
// with the reference kernels, and replaces its outputs by initializers. Random ops, nodes with
// subgraphs and results larger than kMaxFoldedBytes stay in the graph.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ConstantFolding : public Pass {
 public:
  static constexpr size_t kMaxFoldedBytes = 64u << 20;
  const char* name() const override { return "constant_folding"; }
  const char* summary() const override { return "precompute nodes whose inputs are all constants"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
