// Shared by the fusion passes: recognising a producer (convolution or matmul) that can absorb
// more work, and turning it into the pyflame_rt fused op that carries it.
#pragma once

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

}  // namespace pyflame_rt
