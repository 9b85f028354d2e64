#include "compiler/passes/conv_add_fusion.h"

#include "compiler/passes/fusion_util.h"

namespace pyflame_rt {

Status ConvAddFusion::run(Graph& graph, bool& changed) {
  changed |= fuse_adds_into_producers(graph, [&](Node& conv, const std::string& y, const std::string& z) {
    bool has_sum = conv.inputs.size() > 3 && !conv.inputs[3].empty();
    if (!is_open_conv(conv) || has_sum) return false;
    const ValueInfo* yi = graph.find_value_info(y);
    const ValueInfo* zi = graph.find_value_info(z);
    // Equal static shapes: the sum post-op cannot broadcast.
    if (!yi || !zi || !yi->shape.rank_known || !(yi->shape == zi->shape) || yi->dtype != zi->dtype) return false;
    make_fused_conv(graph, conv);
    conv.inputs.resize(4);
    conv.inputs[3] = z;
    return true;
  });
  return Status::OK();
}

}  // namespace pyflame_rt
