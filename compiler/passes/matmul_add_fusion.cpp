#include "compiler/passes/matmul_add_fusion.h"

#include <map>

#include "compiler/passes/fusion_util.h"

namespace pyflame_rt {

Status MatMulAddFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& add = graph.nodes[i];
    if (!add.domain.empty() || add.op_type != "Add" || add.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& y = add.inputs[static_cast<size_t>(side)];
      const std::string& b = add.inputs[static_cast<size_t>(1 - side)];
      auto p = producer.find(y);
      if (p == producer.end() || removed[p->second] || uses[y] != 1) continue;
      Node& mm = graph.nodes[p->second];
      if (!mm.domain.empty() || mm.op_type != "MatMul" || mm.inputs.size() != 2) continue;
      const Tensor* w = constant_of(graph, mm.inputs[1], DType::kFloat32);
      const Tensor* bias = constant_of(graph, b, DType::kFloat32);
      // The bias must run along the columns only: [N] or [1, ..., 1, N].
      if (!w || w->rank() != 2 || !bias || bias->rank() < 1 || bias->numel() != w->dim(1) ||
          bias->dim(bias->rank() - 1) != w->dim(1)) {
        continue;
      }
      make_fused(graph, mm, "FusedMatMul");
      mm.inputs.push_back(b);
      mm.outputs[0] = add.outputs[0];
      removed[i] = true;
      changed = true;
      break;
    }
  }
  erase_nodes(graph, removed);
  return Status::OK();
}

}  // namespace pyflame_rt
