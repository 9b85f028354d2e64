#include "compiler/passes/constant_folding.h"

#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "devices/custom_ops.h"
#include "devices/ref/ref_program.h"
#include "devices/run_interrupt.h"
#include "graph/memory_budget.h"

namespace pyflame_rt {

namespace {

bool foldable_op(const Node& n) {
  static const std::set<std::string> kRandom = {"RandomUniform", "RandomNormal", "RandomUniformLike",
                                                "RandomNormalLike", "Bernoulli", "Multinomial", "Dropout"};
  if (kRandom.count(n.op_type)) return false;
  if (is_custom_op(n.domain, n.op_type)) return false;  // user kernels may be impure (or call Python)
  for (const auto& kv : n.attributes) {
    if (kv.second.g || !kv.second.graphs.empty()) return false;  // control flow
  }
  return true;
}

// Runs one node on constant inputs through the reference interpreter, under the fold's own
// memory and time bounds (kFoldMemoryBytes, kFoldTimeoutMs) or the session's, when tighter.
Expected<std::vector<Value>> evaluate(const Graph& graph, const Node& n, const FoldLimits& limits) {
  Graph one;
  one.opset_imports = graph.opset_imports;
  for (const auto& in : n.inputs) {
    if (!in.empty()) one.initializers[in] = graph.initializers.at(in);
  }
  one.nodes.push_back(n);
  for (const auto& o : n.outputs) if (!o.empty()) one.outputs.push_back({o, DType::kUndefined, Shape::unknown_rank()});
  ASSIGN_OR_RETURN(auto program, RefProgram::build(one, KernelRegistry::reference()));
  RunContext ctx;
  const int64_t own_bytes = static_cast<int64_t>(ConstantFolding::kFoldMemoryBytes);
  const bool session_memory = limits.memory_bytes > 0 && limits.memory_bytes < own_bytes;
  ctx.memory = std::make_shared<MemoryBudget>(session_memory ? limits.memory_bytes : own_bytes,
                                              session_memory ? "SessionOptions.memory_limit_mb (constant folding)"
                                                             : "ConstantFolding::kFoldMemoryBytes");
  const bool session_time = limits.timeout_ms > 0 && limits.timeout_ms < ConstantFolding::kFoldTimeoutMs;
  ctx.timeout_ms = session_time ? limits.timeout_ms : ConstantFolding::kFoldTimeoutMs;
  ctx.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx.timeout_ms);
  ctx.timeout_name = session_time ? "SessionOptions.run_timeout_ms (constant folding)" : "ConstantFolding::kFoldTimeoutMs";
  RunInterruptScope scope(ctx);
  return program->run({});
}

// Half-precision weights stay half here, at the graph level, rather than being narrowed back
// later: folding their Cast would materialise an fp32 copy (double the memory, and what the
// quantizer halved on disk would be fp32 again in the session). The Cast stays in the graph,
// a valid ONNX graph every device can run as it is; a device with kernels that take half
// weights directly (the CPU device: devices/cpu/half_weights.h) absorbs the Cast when it
// compiles its partition, the others run the Cast. Deciding it here and not in the
// quantizer keeps the quantized model a standard one (ONNX Runtime runs it too).
std::set<const Node*> half_weight_casts(const Graph& graph) {
  std::map<std::string, std::vector<std::pair<const Node*, size_t>>> readers;
  for (const auto& n : graph.nodes) {
    for (size_t i = 0; i < n.inputs.size(); ++i) if (!n.inputs[i].empty()) readers[n.inputs[i]].push_back({&n, i});
  }
  std::map<std::string, int> uses = use_counts(graph);  // also counts subgraph reads
  std::set<const Node*> out;
  for (const auto& n : graph.nodes) {
    if (n.op_type != "Cast" || n.outputs.size() != 1) continue;
    const auto& r = readers[n.outputs[0]];
    if (static_cast<int>(r.size()) == uses[n.outputs[0]] && is_half_weight_cast(graph, n, r)) out.insert(&n);
  }
  return out;
}

}  // namespace

Status ConstantFolding::run(Graph& graph, bool& changed) {
  const std::set<const Node*> keep_half = half_weight_casts(graph);
  std::vector<Node> kept;
  for (auto& n : graph.nodes) {
    if (keep_half.count(&n)) { kept.push_back(std::move(n)); continue; }
    bool all_const = foldable_op(n) && KernelRegistry::reference().find(n.domain, n.op_type);
    for (const auto& in : n.inputs) all_const &= in.empty() || graph.initializers.count(in) > 0;
    if (!all_const) { kept.push_back(std::move(n)); continue; }
    auto values = evaluate(graph, n, limits_);
    size_t bytes = 0;
    bool tensors = values.ok();
    if (tensors) {
      for (const auto& v : *values) {
        tensors &= v.is_tensor();
        if (v.is_tensor()) bytes += v.tensor.nbytes();
      }
    }
    // A node that fails on its constants (a model bug) keeps failing at run time, where the
    // error reaches the user; a result that is sequences or too large is not worth storing.
    if (!tensors || bytes > kMaxFoldedBytes) { kept.push_back(std::move(n)); continue; }
    size_t k = 0;
    for (const auto& o : n.outputs) {
      if (!o.empty()) graph.initializers[o] = (*values)[k++].tensor;
    }
    changed = true;
  }
  graph.nodes = std::move(kept);
  return Status::OK();
}

}  // namespace pyflame_rt
