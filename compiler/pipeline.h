// The optimisation pipeline: which device-independent passes run at each OptLevel, in which
// order; each device adds its own (Device::pass_names) on the partitions placed on it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/opt_level.h"
#include "compiler/pass.h"
#include "graph/graph.h"

namespace pyflame_rt {

// The device-independent passes of `level`, in order.
std::vector<std::unique_ptr<Pass>> passes_for_level(OptLevel level);
// Every pass name disabled_passes may name (the shared ones and the devices' own).
std::vector<std::string> known_pass_names();
// kInvalidArgument naming the unknown entry and the known passes.
Status check_pass_names(const std::vector<std::string>& names);

// Runs the passes of `level` (minus `disabled`) over the graph until none changes it.
// Unknown names in `disabled` are an error naming the known passes.
Expected<Graph> optimize_graph(Graph graph, OptLevel level, const std::vector<std::string>& disabled);

// Runs the named passes (a device's own list, minus `disabled`) until none changes the graph.
Expected<Graph> run_passes(Graph graph, const std::vector<std::string>& names,
                           const std::vector<std::string>& disabled);

}  // namespace pyflame_rt
