// Shared by the conv fusion passes: recognising a convolution that can absorb more work, and
// turning a Conv into the pyflame_rt.FusedConv that carries it.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

// A Conv, or a FusedConv with no activation yet (work fused after an activation would change
// the order of operations).
inline bool is_open_conv(const Node& n) {
  if (n.domain.empty() && n.op_type == "Conv") return true;
  return n.domain == "pyflame_rt" && n.op_type == "FusedConv" && n.attr_string("activation", "").empty();
}

inline void make_fused_conv(Graph& graph, Node& conv) {
  if (conv.domain == "pyflame_rt") return;
  conv.domain = "pyflame_rt";
  conv.op_type = "FusedConv";
  graph.opset_imports["pyflame_rt"] = 1;
}

}  // namespace pyflame_rt
