// The optimisation pipeline: which passes run at each OptLevel, in which order.
#pragma once

#include <string>
#include <vector>

#include "compiler/opt_level.h"
#include "graph/graph.h"

namespace pyflame_rt {

// Runs the passes of `level` (minus `disabled`) over the graph until none changes it.
// Unknown names in `disabled` are an error naming the known passes.
Expected<Graph> optimize_graph(Graph graph, OptLevel level,
                               const std::vector<std::string>& disabled);

}  // namespace pyflame_rt
