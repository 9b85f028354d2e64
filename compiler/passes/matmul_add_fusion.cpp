#include "compiler/passes/matmul_add_fusion.h"

#include "compiler/passes/fusion_util.h"

namespace pyflame_rt {

Status MatMulAddFusion::run(Graph& graph, bool& changed) {
  changed |= fuse_adds_into_producers(graph, [&](Node& mm, const std::string&, const std::string& b) {
    if (!mm.domain.empty() || mm.op_type != "MatMul" || mm.inputs.size() != 2) return false;
    const Tensor* w = constant_of(graph, mm.inputs[1], DType::kFloat32);
    if (!w) w = half_weight_of(graph, mm.inputs[1]);  // only its shape is read
    const Tensor* bias = constant_of(graph, b, DType::kFloat32);
    // The bias must run along the columns only: [N] or [1, ..., 1, N].
    if (!w || w->rank() != 2 || !bias || bias->rank() < 1 || bias->numel() != w->dim(1) ||
        bias->dim(bias->rank() - 1) != w->dim(1)) {
      return false;
    }
    make_fused(graph, mm, "FusedMatMul");
    mm.inputs.push_back(b);
    return true;
  });
  return Status::OK();
}

}  // namespace pyflame_rt
