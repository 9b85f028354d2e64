// The optimisation pipeline: which passes run at each OptLevel, in which order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/opt_level.h"
#include "compiler/pass.h"
#include "graph/graph.h"

namespace pyflame_rt {

// The passes of `level`, in order.
std::vector<std::unique_ptr<Pass>> passes_for_level(OptLevel level);
// Every pass name any level uses (what disabled_passes may name).
std::vector<std::string> known_pass_names();

// Runs the passes of `level` (minus `disabled`) over the graph until none changes it.
// Unknown names in `disabled` are an error naming the known passes.
Expected<Graph> optimize_graph(Graph graph, OptLevel level, const std::vector<std::string>& disabled);

}  // namespace pyflame_rt
