#include "compiler/pipeline.h"

namespace pyflame_rt {

Expected<Graph> optimize_graph(Graph graph, OptLevel level,
                               const std::vector<std::string>& disabled) {
  // The pass lists arrive with the fast CPU device work; until then every level runs the graph
  // as imported, and any name given to disable is unknown.
  (void)level;
  if (!disabled.empty()) {
    return invalid_argument("SessionOptions.disabled_passes: unknown pass '", disabled.front(),
                            "' (no passes are registered)");
  }
  return graph;
}

}  // namespace pyflame_rt
