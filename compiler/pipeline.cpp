#include "compiler/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "compiler/pass_registry.h"

namespace pyflame_rt {
namespace {

std::vector<std::string> pass_names_for_level(OptLevel level) {
  if (level == OptLevel::kNone) return {};
  // Identity removal first so folding sees through pass-through nodes; shape folding feeds
  // constant folding (Shape -> Gather -> Concat chains); DCE last sweeps what folding orphaned.
  // QDQ groups become int8 ops before constant folding turns their weights back into fp32
  // (after identity removal: torch shares biases through Identity nodes).
  std::vector<std::string> names = {"identity_elimination", "qdq_conv_fusion", "qdq_residual_fusion", "qdq_matmul_fusion", "shape_folding", "constant_folding",
                                    "dead_code_elimination"};
  if (level == OptLevel::kBasic) return names;
  // pool_before_pointwise_conv after conv_bn_fusion (a Conv -> BN -> AveragePool is then a
  // Conv -> AveragePool) and before conv_add_fusion and activation_fusion, which would close
  // the convolution to it. Fusions: BatchNorm folds into the plain Conv first (bn_conv_fusion then takes those after
  // an activation, bn_to_depthwise_conv the rest that an activation reads, for
  // activation_fusion to absorb the activation); the residual Add and a matmul's bias must be fused before the activation
  // (the sum/bias come before the eltwise post-op); einsum_to_matmul before the matmul
  // fusions, which then see MatMul; gelu_fusion before activation_fusion, which absorbs Gelu;
  // concat_affine_fusion and squeeze_excite_fusion after activation_fusion (they take the
  // activations fused on the convolutions they absorb);
  // zero_channel_pruning after BatchNorm and activations are fused (it reads the folded bias
  // and f(0) of the activation on the convolution itself); attention last: it sees the
  // Reshape/Transpose chains as folded above. Layouts are a device matter (the CPU device's
  // layout_assignment), chosen after placement.
  for (const char* n : {"conv_bn_fusion", "pool_before_pointwise_conv", "bn_conv_fusion", "bn_to_depthwise_conv", "conv_add_fusion", "einsum_to_matmul",
                        "transpose_reshape_folding", "matmul_add_fusion", "gelu_fusion", "activation_fusion",
                        "concat_affine_fusion", "squeeze_excite_fusion", "zero_channel_pruning", "layer_norm_fusion", "attention_fusion"}) {
    names.push_back(n);
  }
  return names;
}

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

Expected<Graph> optimize_graph(Graph graph, OptLevel level, const std::vector<std::string>& disabled,
                               const FoldLimits& fold) {
  RETURN_IF_ERROR(check_pass_names(disabled));
  std::vector<std::unique_ptr<Pass>> passes = passes_for_level(level);
  for (auto& p : passes) {
    if (auto* folding = dynamic_cast<ConstantFolding*>(p.get())) folding->set_limits(fold);
  }
  return run_passes(std::move(graph), passes, disabled);
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
  return run_passes(std::move(graph), passes, disabled);
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
