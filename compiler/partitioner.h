// Partitioner: splits a (topologically sorted, optimised) graph into consecutive partitions of
// about equal estimated cost, each a self-contained Graph that one device actor compiles and
// runs. Values crossing a cut become the outputs of one partition and inputs of a later one.
//
//   ASSIGN_OR_RETURN(std::vector<Partition> parts, partition_graph(graph, 3));
//   parts[1].graph            // its own inputs, outputs, initializers and opsets
//   parts[1].carry            // names the frame must hold after it (later inputs, graph outputs)
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"

namespace pyflame_rt {

struct Partition {
  std::string name;                // "p0", "p1", ...
  Graph graph;
  std::vector<std::string> carry;  // values needed after this partition, in a stable order
  double cost = 0;                 // estimated multiply-adds (see node_cost)
};

// Estimated multiply-adds of a node from its weights and its output's known dims (symbolic
// dims count as 1): conv and matmul-like nodes weight x output positions, others one per
// output element.
double node_cost(const Graph& graph, const Node& node);

// Cuts the (topologically sorted) graph before each node index in `bounds` (which starts
// with 0 and ends with graph.nodes.size(), strictly increasing): partition i holds nodes
// [bounds[i], bounds[i+1]). Crossing values become outputs of one partition and inputs of
// later ones; values nobody reads in a partition ride along in `carry`.
std::vector<Partition> split_graph(const Graph& graph, const std::vector<size_t>& bounds);

// At most `count` partitions (fewer when the graph has fewer nodes), cut only where every
// crossing value has a known dtype. Graphs with control-flow subgraphs are not split (one
// partition). kInvalidArgument for count < 1.
Expected<std::vector<Partition>> partition_graph(const Graph& graph, int count);

}  // namespace pyflame_rt
