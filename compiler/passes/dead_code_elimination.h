// Removes nodes none of whose outputs is used (by a node, a subgraph or a graph output) and
// initializers nothing reads. Nodes with side effects do not exist in ONNX inference graphs,
// so "unused" means "removable".
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class DeadCodeElimination : public Pass {
 public:
  const char* name() const override { return "dead_code_elimination"; }
  const char* summary() const override { return "drop nodes and initializers whose results nobody uses"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
