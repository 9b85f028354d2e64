// A graph with control flow (If/Loop/Scan nodes) on the CPU device: the reference interpreter
// runs each control-flow node (it owns subgraph scoping), the CPU program the stretches of
// plain nodes between them. Before, the whole graph went to the reference interpreter, so a
// detection model's backbone (SSDLite: 1850 nodes) ran on reference kernels because of one If
// in its post-processing.
//
// The (topologically sorted) graph is cut before and after every control-flow node; a piece
// holding one is a graph of its own whose inputs include the outer-scope values its subgraphs
// read (what the interpreter resolves as outer scope). Values flow between pieces by name.
//
//   ASSIGN_OR_RETURN(auto exe, compile_around_control_flow(graph, native, reference));
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "devices/device.h"

namespace pyflame_rt {
namespace cpu {

using PieceCompiler = std::function<Expected<std::unique_ptr<Executable>>(const Graph&)>;

// Adds to `out` the names `subgraph` reads from its enclosing scopes: read by its nodes (or by
// theirs, nested) and defined by none of its nodes, inputs or initializers.
void outer_scope_reads(const Graph& subgraph, std::set<std::string>* out);

// `native` compiles a piece without subgraphs, `reference` one with its control-flow node.
// Needs a topologically sorted graph (kInvalidArgument otherwise).
Expected<std::unique_ptr<Executable>> compile_around_control_flow(const Graph& graph, const PieceCompiler& native,
                                                                  const PieceCompiler& reference);

}  // namespace cpu
}  // namespace pyflame_rt
