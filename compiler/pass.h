// A graph pass: one class per file under compiler/passes/, with a stable name (used to disable
// it), a one-line summary and run(). "Pattern not found" is success with changed = false; an
// error Status is for real failures only.
//
//   DeadCodeElimination dce;
//   bool changed = false;
//   RETURN_IF_ERROR(dce.run(graph, changed));
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace pyflame_rt {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual const char* name() const = 0;
  virtual const char* summary() const = 0;
  virtual Status run(Graph& graph, bool& changed) = 0;
};

// Names read by a node's subgraphs from enclosing scopes (If/Loop/Scan bodies).
std::set<std::string> subgraph_outer_reads(const Node& node);
// Every value name a graph uses as a node input, a subgraph outer read or a graph output.
std::set<std::string> used_names(const Graph& graph);

}  // namespace pyflame_rt
