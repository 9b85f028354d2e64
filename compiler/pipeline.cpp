#include "compiler/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "compiler/passes/activation_fusion.h"
#include "compiler/passes/attention_fusion.h"
#include "compiler/passes/bn_conv_fusion.h"
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
#include "compiler/passes/shape_folding.h"
#include "compiler/passes/transpose_reshape_folding.h"

namespace pyflame_rt {

namespace {

// Debug builds verify by default; release builds when PFRT_VERIFY_PASSES is set (the test
// runners set it) or a test calls set_verify_passes(true).
bool verify_default() {
#ifndef NDEBUG
  return true;
#else
  const char* env = std::getenv("PFRT_VERIFY_PASSES");
  return env != nullptr && *env != '\0' && std::string(env) != "0";
#endif
}

std::atomic<bool>& verify_flag() {
  static std::atomic<bool> flag{verify_default()};
  return flag;
}

}  // namespace

void set_verify_passes(bool on) { verify_flag().store(on); }
bool verify_passes() { return verify_flag().load(); }

std::vector<std::unique_ptr<Pass>> passes_for_level(OptLevel level) {
  std::vector<std::unique_ptr<Pass>> passes;
  if (level == OptLevel::kNone) return passes;
  // Identity removal first so folding sees through pass-through nodes; shape folding feeds
  // constant folding (Shape -> Gather -> Concat chains); DCE last sweeps what folding orphaned.
  passes.push_back(std::make_unique<IdentityElimination>());
  passes.push_back(std::make_unique<ShapeFolding>());
  passes.push_back(std::make_unique<ConstantFolding>());
  passes.push_back(std::make_unique<DeadCodeElimination>());
  if (level == OptLevel::kBasic) return passes;
  // Fusions: BatchNorm folds into the plain Conv first; the residual Add and a matmul's bias
  // must be fused before the activation (the sum/bias come before the eltwise post-op).
  passes.push_back(std::make_unique<ConvBnFusion>());
  passes.push_back(std::make_unique<BnConvFusion>());  // the BatchNorms conv_bn_fusion left (after an activation)
  passes.push_back(std::make_unique<ConvAddFusion>());
  passes.push_back(std::make_unique<EinsumToMatMul>());  // before the matmul fusions, which then see MatMul
  passes.push_back(std::make_unique<TransposeReshapeFolding>());
  passes.push_back(std::make_unique<MatMulAddFusion>());
  passes.push_back(std::make_unique<GeluFusion>());  // before activation_fusion, which absorbs Gelu
  passes.push_back(std::make_unique<ActivationFusion>());
  passes.push_back(std::make_unique<LayerNormFusion>());
  passes.push_back(std::make_unique<AttentionFusion>());  // last: sees Reshape/Transpose chains as folded above
  if (level == OptLevel::kExtended) return passes;
  // ALL: layouts for the device, once the fusions above have settled which convolutions exist.
  passes.push_back(std::make_unique<LayoutAssignment>());
  return passes;
}

std::vector<std::string> known_pass_names() {
  std::vector<std::string> names;
  for (const auto& p : passes_for_level(OptLevel::kAll)) names.push_back(p->name());
  return names;
}

Expected<Graph> optimize_graph(Graph graph, OptLevel level, const std::vector<std::string>& disabled) {
  std::vector<std::string> known = known_pass_names();
  for (const auto& d : disabled) {
    if (std::find(known.begin(), known.end(), d) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return invalid_argument("SessionOptions.disabled_passes: unknown pass '", d, "' (known: ", list, ")");
    }
  }
  return run_passes(std::move(graph), passes_for_level(level), disabled);
}

Expected<Graph> run_passes(Graph graph, const std::vector<std::unique_ptr<Pass>>& passes,
                           const std::vector<std::string>& disabled) {
  // Sorted once here; from then on every pass keeps the order (verified below when enabled).
  RETURN_IF_ERROR(graph.sort_topologically());
  const bool verify = verify_passes();
  // Rounds until nothing changes; each round only shrinks the graph, so a handful suffice and
  // the cap only guards against a pass that keeps reporting changes.
  constexpr int kMaxRounds = 8;
  for (int round = 0; round < kMaxRounds; ++round) {
    bool any = false;
    for (const auto& pass : passes) {
      if (std::find(disabled.begin(), disabled.end(), pass->name()) != disabled.end()) continue;
      bool changed = false;
      Status st = pass->run(graph, changed);
      if (!st.ok()) return st.with_context(std::string("pass ") + pass->name() + ": ");
      // A pass must leave a valid, still sorted graph: later passes (dead-code elimination
      // walks backwards) rely on the order, so a violation is the pass's bug, named here.
      if (verify && changed) {
        Status valid = graph.check_sorted();
        if (!valid.ok()) {
          return valid.with_context(std::string("pass ") + pass->name() + " (round " + std::to_string(round + 1) +
                                    ") left an invalid graph: ");
        }
      }
      any |= changed;
    }
    if (!any) break;
  }
  // Passes keep the order (checked above when verifying); the sort is a cheap safety net.
  RETURN_IF_ERROR(graph.sort_topologically());
  return graph;
}

}  // namespace pyflame_rt
