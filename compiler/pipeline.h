// The optimisation pipeline: which passes run at each OptLevel, in which order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/opt_level.h"
#include "compiler/pass.h"
#include "graph/graph.h"

namespace pyflame_rt {

// The passes of `level`, in order.
std::vector<std::unique_ptr<Pass>> passes_for_level(OptLevel level);
// Every pass name any level uses (what disabled_passes may name).
std::vector<std::string> known_pass_names();

// When on, optimize_graph checks the graph after every pass that changed it
// (Graph::check_sorted) and fails naming the pass. On in debug builds and when the
// environment sets PFRT_VERIFY_PASSES=1 (the test runners do); tests may also switch it.
void set_verify_passes(bool on);
bool verify_passes();

// Runs the passes of `level` (minus `disabled`) over the graph until none changes it.
// Unknown names in `disabled` are an error naming the known passes.
Expected<Graph> optimize_graph(Graph graph, OptLevel level, const std::vector<std::string>& disabled);

// The loop behind optimize_graph over an explicit pass list (tests drive it with their own).
Expected<Graph> run_passes(Graph graph, const std::vector<std::unique_ptr<Pass>>& passes,
                           const std::vector<std::string>& disabled);

}  // namespace pyflame_rt
