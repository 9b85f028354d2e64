#include "compiler/passes/shape_folding.h"

#include <algorithm>

namespace pyflame_rt {

Status ShapeFolding::run(Graph& graph, bool& changed) {
  std::vector<Node> kept;
  for (auto& n : graph.nodes) {
    bool shape_op = n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size") && !n.inputs.empty();
    const ValueInfo* info = shape_op ? graph.find_value_info(n.inputs[0]) : nullptr;
    if (!info || !info->shape.fully_known() || n.outputs.empty() || n.outputs[0].empty()) {
      kept.push_back(std::move(n));
      continue;
    }
    Dims dims;
    for (const Dim& d : info->shape.dims) dims.push_back(d.value);
    if (n.op_type == "Size") {
      graph.initializers[n.outputs[0]] = Tensor::scalar<int64_t>(num_elements(dims));
    } else {
      int64_t rank = static_cast<int64_t>(dims.size());
      auto clamp = [&](int64_t v) { return std::min(std::max<int64_t>(v < 0 ? v + rank : v, 0), rank); };
      int64_t start = clamp(n.attr_int("start", 0)), end = clamp(n.attr_int("end", rank));
      std::vector<int64_t> part(dims.begin() + start, dims.begin() + std::max(start, end));
      graph.initializers[n.outputs[0]] = Tensor::from_vector<int64_t>({static_cast<int64_t>(part.size())}, part);
    }
    changed = true;
  }
  graph.nodes = std::move(kept);
  return Status::OK();
}

}  // namespace pyflame_rt
