// A graph pass: one class per file under compiler/passes/, with a stable name (used to disable
// it), a one-line summary and run(). "Pattern not found" is success with changed = false; an
// error Status is for real failures only.
//
//   DeadCodeElimination dce;
//   bool changed = false;
//   RETURN_IF_ERROR(dce.run(graph, changed));
#pragma once

#include <map>
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

// How many times each value is read (node inputs, subgraph reads and graph outputs each count
// once): a fusion may absorb a producer only when its output has exactly one reader.
std::map<std::string, int> use_counts(const Graph& graph);

// Index of the node producing each value.
std::map<std::string, size_t> producers(const Graph& graph);

// Removes the nodes flagged in `removed` (same indexing as graph.nodes), keeping order.
void erase_nodes(Graph& graph, const std::vector<bool>& removed);

// The constant behind `name` when it is an initializer of dtype `dt`, else nullptr.
const Tensor* constant_of(const Graph& graph, const std::string& name, DType dt);

// The float16/bfloat16 initializer behind `name` when `name` is made by a Cast of it to float:
// the quantizer's half-precision weights (python/pyflame_rt/quantization.py), which constant
// folding leaves unfolded in front of a Conv/MatMul/Gemm weight input (is_half_weight_cast).
// Fusions that only need the weights' shape look through the Cast with this; else nullptr.
const Tensor* half_weight_of(const Graph& graph, const std::string& name);

// True for a Cast of a float16/bfloat16 initializer to float whose output every reader takes
// as the weights (input 1) of a Conv, MatMul or Gemm (or their fused forms). `readers` are
// (node, input index) pairs of the Cast's output.
bool is_half_weight_cast(const Graph& graph, const Node& cast,
                         const std::vector<std::pair<const Node*, size_t>>& readers);

}  // namespace pyflame_rt
