// Removes nodes that pass their input through unchanged: Identity, inference-mode Dropout whose
// mask nobody reads, and Cast to the type the value already has. Consumers are rewired to the
// input. A node whose output is a graph output, or is read inside a subgraph, stays: renaming
// there would change the model's interface or need scope-aware rewriting for no gain.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class IdentityElimination : public Pass {
 public:
  const char* name() const override { return "identity_elimination"; }
  const char* summary() const override { return "drop Identity, inference Dropout and no-op Cast nodes"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
