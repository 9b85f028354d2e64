#include "compiler/pass_registry.h"

#include <functional>
#include <utility>

#include "compiler/passes/activation_fusion.h"
#include "compiler/passes/attention_fusion.h"
#include "compiler/passes/bn_conv_fusion.h"
#include "compiler/passes/bn_to_depthwise_conv.h"
#include "compiler/passes/concat_affine_fusion.h"
#include "compiler/passes/constant_folding.h"
#include "compiler/passes/conv_add_fusion.h"
#include "compiler/passes/conv_bn_fusion.h"
#include "compiler/passes/dead_code_elimination.h"
#include "compiler/passes/einsum_to_matmul.h"
#include "compiler/passes/gelu_fusion.h"
#include "compiler/passes/identity_elimination.h"
#include "compiler/passes/layer_norm_fusion.h"
#include "compiler/passes/layout_assignment.h"
#include "compiler/passes/matmul_add_fusion.h"
#include "compiler/passes/mesh_layout.h"
#include "compiler/passes/pool_before_pointwise_conv.h"
#include "compiler/passes/shape_folding.h"
#include "compiler/passes/squeeze_excite_fusion.h"
#include "compiler/passes/transpose_reshape_folding.h"
#include "compiler/passes/zero_channel_pruning.h"
#include "compiler/quantization/qdq_conv_fusion.h"
#include "compiler/quantization/qdq_matmul_fusion.h"
#include "compiler/quantization/qdq_residual_fusion.h"

namespace pyflame_rt {
namespace {

using Factory = std::function<std::unique_ptr<Pass>()>;

template <typename P>
std::pair<std::string, Factory> entry() {
  return {P().name(), [] { return std::unique_ptr<Pass>(new P()); }};
}

const std::vector<std::pair<std::string, Factory>>& factories() {
  static const std::vector<std::pair<std::string, Factory>> all = {
      entry<IdentityElimination>(), entry<ShapeFolding>(),        entry<ConstantFolding>(),
      entry<DeadCodeElimination>(), entry<ConvBnFusion>(),        entry<ConvAddFusion>(),
      entry<TransposeReshapeFolding>(), entry<MatMulAddFusion>(), entry<GeluFusion>(),
      entry<ActivationFusion>(),    entry<LayerNormFusion>(),     entry<AttentionFusion>(),
      entry<LayoutAssignment>(),    entry<MeshLayout>(),       entry<BnConvFusion>(),
      entry<EinsumToMatMul>(),     entry<ZeroChannelPruning>(),  entry<BnToDepthwiseConv>(),
      entry<QdqConvFusion>(),       entry<QdqResidualFusion>(),  entry<QdqMatMulFusion>(),
      entry<ConcatAffineFusion>(),  entry<SqueezeExciteFusion>(), entry<PoolBeforePointwiseConv>(),
  };
  return all;
}

}  // namespace

std::unique_ptr<Pass> make_pass(const std::string& name) {
  for (const auto& [n, make] : factories()) if (n == name) return make();
  return nullptr;
}

std::vector<std::string> all_pass_names() {
  std::vector<std::string> names;
  for (const auto& f : factories()) names.push_back(f.first);
  return names;
}

}  // namespace pyflame_rt
