#include "compiler/passes/conv_add_fusion.h"

#include <map>

#include "compiler/passes/fusion_util.h"

namespace pyflame_rt {

Status ConvAddFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& add = graph.nodes[i];
    if (!add.domain.empty() || add.op_type != "Add" || add.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& y = add.inputs[static_cast<size_t>(side)];
      const std::string& z = add.inputs[static_cast<size_t>(1 - side)];
      auto p = producer.find(y);
      if (p == producer.end() || removed[p->second] || uses[y] != 1 || y == z) continue;
      Node& conv = graph.nodes[p->second];
      bool has_sum = conv.inputs.size() > 3 && !conv.inputs[3].empty();
      if (!is_open_conv(conv) || has_sum) continue;
      const ValueInfo* yi = graph.find_value_info(y);
      const ValueInfo* zi = graph.find_value_info(z);
      // Equal static shapes: the sum post-op cannot broadcast.
      if (!yi || !zi || !yi->shape.rank_known || !(yi->shape == zi->shape) || yi->dtype != zi->dtype) continue;
      make_fused_conv(graph, conv);
      conv.inputs.resize(4);
      conv.inputs[3] = z;
      conv.outputs[0] = add.outputs[0];
      removed[i] = true;
      changed = true;
      break;
    }
  }
  erase_nodes(graph, removed);
  return Status::OK();
}

}  // namespace pyflame_rt
