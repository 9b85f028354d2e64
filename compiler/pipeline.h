// The optimisation pipeline: which device-independent passes run at each OptLevel, in which
// order; each device adds its own (Device::pass_names) on the partitions placed on it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/pass.h"
#include "compiler/passes/constant_folding.h"
#include "graph/graph.h"
#include "graph/opt_level.h"

namespace pyflame_rt {

// The device-independent passes of `level`, in order.
std::vector<std::unique_ptr<Pass>> passes_for_level(OptLevel level);
// Every pass name disabled_passes may name (the shared ones and the devices' own).
std::vector<std::string> known_pass_names();
// kInvalidArgument naming the unknown entry and the known passes.
Status check_pass_names(const std::vector<std::string>& names);

// When on, every pass run checks the graph after each pass that changed it
// (Graph::check_sorted) and fails naming the pass. On in debug builds and when the
// environment sets PFRT_VERIFY_PASSES=1 (the test runners do); tests may also switch it.
void set_verify_passes(bool on);
bool verify_passes();

// Runs the passes of `level` (minus `disabled`) over the graph until none changes it.
// Unknown names in `disabled` are an error naming the known passes. `fold` carries the
// session's memory limit and run deadline to constant folding (FoldLimits).
Expected<Graph> optimize_graph(Graph graph, OptLevel level, const std::vector<std::string>& disabled,
                               const FoldLimits& fold = {});

// Runs the named passes (a device's own list, minus `disabled`) until none changes the graph.
Expected<Graph> run_passes(Graph graph, const std::vector<std::string>& names,
                           const std::vector<std::string>& disabled);
// The loop behind both over an explicit pass list (tests drive it with their own).
Expected<Graph> run_passes(Graph graph, const std::vector<std::unique_ptr<Pass>>& passes,
                           const std::vector<std::string>& disabled);

}  // namespace pyflame_rt
