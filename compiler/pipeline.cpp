#include "compiler/pipeline.h"

#include <algorithm>

#include "compiler/pass_registry.h"

namespace pyflame_rt {
namespace {

std::vector<std::string> pass_names_for_level(OptLevel level) {
  if (level == OptLevel::kNone) return {};
  // Identity removal first so folding sees through pass-through nodes; shape folding feeds
  // constant folding (Shape -> Gather -> Concat chains); DCE last sweeps what folding orphaned.
  // QDQ groups become int8 ops before constant folding turns their weights back into fp32
  // (after identity removal: torch shares biases through Identity nodes).
  std::vector<std::string> names = {"identity_elimination", "qdq_conv_fusion", "qdq_residual_fusion", "shape_folding", "constant_folding",
                                    "dead_code_elimination"};
  if (level == OptLevel::kBasic) return names;
  // Fusions: BatchNorm folds into the plain Conv first; the residual Add and a matmul's bias
  // must be fused before the activation (the sum/bias come before the eltwise post-op);
  // gelu_fusion before activation_fusion, which absorbs Gelu; attention last: it sees the
  // Reshape/Transpose chains as folded above. Layouts are a device matter (the CPU device's
  // layout_assignment), chosen after placement.
  for (const char* n : {"conv_bn_fusion", "conv_add_fusion", "transpose_reshape_folding", "matmul_add_fusion",
                        "gelu_fusion", "activation_fusion", "layer_norm_fusion", "attention_fusion"}) {
    names.push_back(n);
  }
  return names;
}

Expected<Graph> run_to_fixpoint(Graph graph, const std::vector<std::unique_ptr<Pass>>& passes,
                                const std::vector<std::string>& disabled) {
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
      any |= changed;
    }
    if (!any) break;
  }
  // Fusions can hand a node an input produced later in the old order (a residual operand).
  RETURN_IF_ERROR(graph.sort_topologically());
  return graph;
}

}  // namespace

std::vector<std::unique_ptr<Pass>> passes_for_level(OptLevel level) {
  std::vector<std::unique_ptr<Pass>> passes;
  for (const auto& name : pass_names_for_level(level)) passes.push_back(make_pass(name));
  return passes;
}

std::vector<std::string> known_pass_names() { return all_pass_names(); }

Status check_pass_names(const std::vector<std::string>& names) {
  std::vector<std::string> known = known_pass_names();
  for (const auto& d : names) {
    if (std::find(known.begin(), known.end(), d) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return invalid_argument("SessionOptions.disabled_passes: unknown pass '", d, "' (known: ", list, ")");
    }
  }
  return Status::OK();
}

Expected<Graph> optimize_graph(Graph graph, OptLevel level, const std::vector<std::string>& disabled) {
  RETURN_IF_ERROR(check_pass_names(disabled));
  return run_to_fixpoint(std::move(graph), passes_for_level(level), disabled);
}

Expected<Graph> run_passes(Graph graph, const std::vector<std::string>& names,
                           const std::vector<std::string>& disabled) {
  RETURN_IF_ERROR(check_pass_names(disabled));
  std::vector<std::unique_ptr<Pass>> passes;
  for (const auto& name : names) {
    std::unique_ptr<Pass> p = make_pass(name);
    if (!p) return invalid_argument("device pass list: unknown pass '", name, "'");
    passes.push_back(std::move(p));
  }
  if (passes.empty()) return graph;
  return run_to_fixpoint(std::move(graph), passes, disabled);
}

}  // namespace pyflame_rt
