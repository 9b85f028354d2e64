#include "compiler/passes/identity_elimination.h"

#include <map>

namespace pyflame_rt {

namespace {

bool all_zero(const std::vector<int64_t>& v) {
  for (int64_t x : v) if (x != 0) return false;
  return true;
}

// True when `n` forwards input 0 to output 0 unchanged (and has no other live output).
bool is_pass_through(const Graph& g, const Node& n, const std::set<std::string>& used) {
  if (!n.domain.empty() || n.inputs.empty() || n.inputs[0].empty() || n.outputs.empty()) return false;
  if (n.op_type == "Identity") return true;
  if (n.op_type == "Dropout") {
    bool mask_used = n.outputs.size() > 1 && !n.outputs[1].empty() && used.count(n.outputs[1]);
    // training_mode (input 2) makes Dropout random unless it is a constant false, or the
    // ratio (input 1) is a constant 0 (torch exports F.dropout(p=0.0, training=True) so).
    bool training = false;
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      auto it = g.initializers.find(n.inputs[2]);
      training = it == g.initializers.end() || it->second.numel() != 1 || it->second.value_as_int64(0) != 0;
    }
    if (training && n.inputs.size() > 1 && !n.inputs[1].empty()) {
      auto it = g.initializers.find(n.inputs[1]);
      training = it == g.initializers.end() || it->second.numel() != 1 || it->second.value_as_double(0) != 0.0;
    }
    return !mask_used && !training;
  }
  if (n.op_type == "Cast") {
    const ValueInfo* in = g.find_value_info(n.inputs[0]);
    return in && in->dtype != DType::kUndefined && static_cast<int64_t>(in->dtype) == n.attr_int("to", -1);
  }
  if (n.op_type == "Pad") {
    // Zero pads add nothing whatever the mode or fill value: torch exports AvgPool2d with
    // ceil_mode off as Pad(x, [0]*8) -> AveragePool (DenseNet's transitions), and the copy
    // costs as much as the pooling.
    if (n.attributes.count("pads")) return all_zero(n.attr_ints("pads"));  // opset < 11
    if (n.inputs.size() < 2 || n.inputs[1].empty()) return false;
    auto it = g.initializers.find(n.inputs[1]);
    if (it == g.initializers.end() || it->second.dtype() != DType::kInt64) return false;
    return all_zero(it->second.to_int64_vector());
  }
  return false;
}

}  // namespace

Status IdentityElimination::run(Graph& graph, bool& changed) {
  std::set<std::string> used = used_names(graph);
  std::set<std::string> outputs, subgraph_reads;
  for (const auto& o : graph.outputs) outputs.insert(o.name);
  for (const auto& n : graph.nodes) for (const auto& r : subgraph_outer_reads(n)) subgraph_reads.insert(r);
  std::map<std::string, std::string> replace;  // removed output -> the value it forwarded
  std::vector<Node> kept;
  for (auto& n : graph.nodes) {
    for (auto& in : n.inputs) {
      auto it = replace.find(in);
      if (it != replace.end()) in = it->second;
    }
    const std::string& out = n.outputs[0];
    if (is_pass_through(graph, n, used) && !outputs.count(out) && !subgraph_reads.count(out)) {
      replace[out] = n.inputs[0];
      changed = true;
      continue;
    }
    kept.push_back(std::move(n));
  }
  graph.nodes = std::move(kept);
  return Status::OK();
}

}  // namespace pyflame_rt
