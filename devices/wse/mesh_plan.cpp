// Names of the plan's enums (for reports and the CSL generator's comments).
#include "devices/wse/mesh_plan.h"

namespace pyflame_rt {

const char* mesh_op_kind_name(MeshOpKind kind) {
  switch (kind) {
    case MeshOpKind::kGemm: return "gemm";
    case MeshOpKind::kConv: return "conv";
    case MeshOpKind::kElementwise: return "elementwise";
    case MeshOpKind::kPool: return "pool";
    case MeshOpKind::kNorm: return "norm";
    case MeshOpKind::kSoftmax: return "softmax";
    case MeshOpKind::kAttention: return "attention";
    case MeshOpKind::kRecurrent: return "recurrent";
    case MeshOpKind::kReduce: return "reduce";
    case MeshOpKind::kMovement: return "movement";
  }
  return "unknown";
}

}  // namespace pyflame_rt
