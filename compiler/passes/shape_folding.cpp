#include "compiler/passes/shape_folding.h"

#include <algorithm>

#include "compiler/passes/constant_folding.h"
#include "graph/onnx_import.h"

namespace pyflame_rt {

namespace {

bool shape_op(const Node& n) {
  return n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size") && !n.inputs.empty();
}

// Replaces each Shape/Size whose input shape is fully known; true when any was.
bool fold_known_shapes(Graph& graph) {
  bool changed = false;
  std::vector<Node> kept;
  for (auto& n : graph.nodes) {
    const ValueInfo* info = shape_op(n) ? graph.find_value_info(n.inputs[0]) : nullptr;
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
  return changed;
}

bool has_unknown_shape_op(const Graph& graph) {
  for (const Node& n : graph.nodes) {
    if (!shape_op(n)) continue;
    const ValueInfo* info = graph.find_value_info(n.inputs[0]);
    if (!info || !info->shape.fully_known()) return true;
  }
  return false;
}

}  // namespace

Status ShapeFolding::run(Graph& graph, bool& changed) {
  changed |= fold_known_shapes(graph);
  // Shapes ONNX could not infer at import (Swin's window shifts: a Reshape whose target was
  // computed) become known once the arithmetic before them is constant: fold, infer again,
  // until a round folds nothing. Each round reaches one Shape further down a chain, so this
  // loops here rather than through the pipeline's few rounds.
  constexpr int kMaxRounds = 64;
  ConstantFolding folding;
  for (int round = 0; round < kMaxRounds && has_unknown_shape_op(graph); ++round) {
    bool folded = false;
    RETURN_IF_ERROR(folding.run(graph, folded));
    ASSIGN_OR_RETURN(int improved, refine_shapes_with_onnx(graph));
    bool shapes = fold_known_shapes(graph);
    changed |= folded || improved > 0 || shapes;
    if (!shapes) break;
  }
  return Status::OK();
}

}  // namespace pyflame_rt
