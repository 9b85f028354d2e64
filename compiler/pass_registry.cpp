// The pass table of pass_registry.h: the pipeline's passes (by their own names) and the
// device passes, each with a factory.
#include "compiler/pass_registry.h"

#include <utility>

#include "compiler/passes/activation_fusion.h"
#include "compiler/passes/attention_fusion.h"
#include "compiler/passes/constant_folding.h"
#include "compiler/passes/conv_add_fusion.h"
#include "compiler/passes/conv_bn_fusion.h"
#include "compiler/passes/dead_code_elimination.h"
#include "compiler/passes/gelu_fusion.h"
#include "compiler/passes/identity_elimination.h"
#include "compiler/passes/layer_norm_fusion.h"
#include "compiler/passes/layout_assignment.h"
#include "compiler/passes/matmul_add_fusion.h"
#include "compiler/passes/mesh_layout.h"
#include "compiler/passes/shape_folding.h"
#include "compiler/passes/transpose_reshape_folding.h"

namespace pyflame_rt {

namespace {

template <typename P>
std::pair<std::string, PassFactory> entry() {
  return {P().name(), [] { return std::unique_ptr<Pass>(new P()); }};
}

const std::vector<std::pair<std::string, PassFactory>>& table() {
  static const std::vector<std::pair<std::string, PassFactory>> t = {
      entry<IdentityElimination>(), entry<ShapeFolding>(),   entry<ConstantFolding>(),
      entry<DeadCodeElimination>(), entry<ConvBnFusion>(),   entry<ConvAddFusion>(),
      entry<TransposeReshapeFolding>(), entry<MatMulAddFusion>(), entry<GeluFusion>(),
      entry<ActivationFusion>(),    entry<LayerNormFusion>(), entry<AttentionFusion>(),
      entry<LayoutAssignment>(),    entry<MeshLayout>(),
  };
  return t;
}

}  // namespace

Expected<std::unique_ptr<Pass>> create_pass(const std::string& name) {
  std::string known;
  for (const auto& [n, factory] : table()) {
    if (n == name) return factory();
    known += (known.empty() ? "" : ", ") + n;
  }
  return make_status(StatusCode::kNotFound, "unknown pass '", name, "' (known: ", known, ")");
}

std::vector<std::string> registered_pass_names() {
  std::vector<std::string> names;
  for (const auto& e : table()) names.push_back(e.first);
  return names;
}

}  // namespace pyflame_rt
