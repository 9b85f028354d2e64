// Shared by the fusion passes: recognising a producer (convolution or matmul) that can absorb
// more work, and turning it into the pyflame_rt fused op that carries it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/pass.h"

namespace pyflame_rt {

// A Conv, or a FusedConv with no activation yet (work fused after an activation would change
// the order of operations).
inline bool is_open_conv(const Node& n) {
  if (n.domain.empty() && n.op_type == "Conv") return true;
  return n.domain == "pyflame_rt" && n.op_type == "FusedConv" && n.attr_string("activation", "").empty();
}

// A FusedMatMul (MatMul with its bias already absorbed) with no activation yet.
inline bool is_open_matmul(const Node& n) {
  return n.domain == "pyflame_rt" && n.op_type == "FusedMatMul" && n.attr_string("activation", "").empty();
}

inline void make_fused(Graph& graph, Node& n, const char* fused_op) {
  if (n.domain == "pyflame_rt") return;
  n.domain = "pyflame_rt";
  n.op_type = fused_op;
  graph.opset_imports["pyflame_rt"] = 1;
}

inline void make_fused_conv(Graph& graph, Node& conv) { make_fused(graph, conv, "FusedConv"); }

// Absorbs Add nodes into their producers: for each Add(y, other), in either operand order,
// where y is read only by that Add and made by a node for which absorb(producer, y, other)
// returns true (having rewritten the producer to also compute the sum), the producer takes
// over the Add's output and its place in the node order, and the Add is removed. Returns
// whether anything changed.
template <typename Absorb>
bool fuse_adds_into_producers(Graph& graph, Absorb absorb) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  bool changed = false;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& add = graph.nodes[i];
    if (!add.domain.empty() || add.op_type != "Add" || add.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& y = add.inputs[static_cast<size_t>(side)];
      const std::string& other = add.inputs[static_cast<size_t>(1 - side)];
      auto p = producer.find(y);
      if (p == producer.end() || removed[p->second] || uses[y] != 1 || y == other) continue;
      Node& node = graph.nodes[p->second];
      if (!absorb(node, y, other)) continue;
      // The fused node now reads `other`, which may be made after the producer: it takes the
      // Add's place (after both operands, before every reader of the sum) so the nodes stay in
      // topological order for the passes that follow (dead-code elimination walks backwards
      // and would drop the producer of `other`).
      node.outputs[0] = add.outputs[0];
      graph.nodes[i] = std::move(node);
      removed[p->second] = true;
      changed = true;
      break;
    }
  }
  erase_nodes(graph, removed);
  return changed;
}

}  // namespace pyflame_rt
