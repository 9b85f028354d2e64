// Shared by the QDQ fusion passes: recognising the default-domain nodes of a QDQ group.
#pragma once

#include <map>
#include <string>

#include "compiler/pass.h"

namespace pyflame_rt {

// `n` is the default-domain op `op` (QuantizeLinear, DequantizeLinear, Conv, ...).
inline bool is_op(const Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

// The node that makes `name` when it is the default-domain op `op`, else nullptr. `producer`
// is producers(graph).
inline const Node* made_by(const Graph& graph, const std::map<std::string, size_t>& producer, const std::string& name,
                           const char* op) {
  auto p = producer.find(name);
  if (p == producer.end() || !is_op(graph.nodes[p->second], op)) return nullptr;
  return &graph.nodes[p->second];
}

}  // namespace pyflame_rt
