#include "compiler/pass.h"

namespace pyflame_rt {

namespace {

void collect_outer_reads(const Graph& g, std::set<std::string>& out) {
  std::set<std::string> local;
  for (const auto& v : g.inputs) local.insert(v.name);
  for (const auto& kv : g.initializers) local.insert(kv.first);
  for (const auto& n : g.nodes) for (const auto& o : n.outputs) local.insert(o);
  std::set<std::string> reads;
  for (const auto& n : g.nodes) {
    for (const auto& i : n.inputs) if (!i.empty()) reads.insert(i);
    for (const auto& r : subgraph_outer_reads(n)) reads.insert(r);
  }
  for (const auto& o : g.outputs) reads.insert(o.name);
  for (const auto& r : reads) if (!local.count(r)) out.insert(r);
}

}  // namespace

std::set<std::string> subgraph_outer_reads(const Node& node) {
  std::set<std::string> out;
  for (const auto& kv : node.attributes) {
    if (kv.second.g) collect_outer_reads(*kv.second.g, out);
    for (const auto& g : kv.second.graphs) collect_outer_reads(*g, out);
  }
  return out;
}

std::set<std::string> used_names(const Graph& graph) {
  std::set<std::string> used;
  for (const auto& n : graph.nodes) {
    for (const auto& i : n.inputs) if (!i.empty()) used.insert(i);
    for (const auto& r : subgraph_outer_reads(n)) used.insert(r);
  }
  for (const auto& o : graph.outputs) used.insert(o.name);
  return used;
}

std::map<std::string, int> use_counts(const Graph& graph) {
  std::map<std::string, int> counts;
  for (const auto& n : graph.nodes) {
    for (const auto& i : n.inputs) if (!i.empty()) ++counts[i];
    for (const auto& r : subgraph_outer_reads(n)) ++counts[r];
  }
  for (const auto& o : graph.outputs) ++counts[o.name];
  return counts;
}

std::map<std::string, size_t> producers(const Graph& graph) {
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& o : graph.nodes[i].outputs) if (!o.empty()) producer[o] = i;
  }
  return producer;
}

void erase_nodes(Graph& graph, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
}

const Tensor* constant_of(const Graph& graph, const std::string& name, DType dt) {
  auto it = graph.initializers.find(name);
  return it != graph.initializers.end() && it->second.dtype() == dt ? &it->second : nullptr;
}

namespace {

bool half_initializer_cast(const Graph& graph, const Node& n) {
  if (!n.domain.empty() || n.op_type != "Cast" || n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  if (n.attr_int("to", 0) != static_cast<int64_t>(DType::kFloat32)) return false;
  auto it = graph.initializers.find(n.inputs[0]);
  return it != graph.initializers.end() &&
         (it->second.dtype() == DType::kFloat16 || it->second.dtype() == DType::kBFloat16);
}

}  // namespace

const Tensor* half_weight_of(const Graph& graph, const std::string& name) {
  for (const auto& n : graph.nodes) {
    if (n.outputs.size() == 1 && n.outputs[0] == name) {
      return half_initializer_cast(graph, n) ? &graph.initializers.at(n.inputs[0]) : nullptr;
    }
  }
  return nullptr;
}

bool is_half_weight_cast(const Graph& graph, const Node& cast,
                         const std::vector<std::pair<const Node*, size_t>>& readers) {
  if (!half_initializer_cast(graph, cast) || readers.empty() || graph.find_output(cast.outputs[0])) return false;
  for (const auto& [node, index] : readers) {
    const std::string& op = node->op_type;
    bool weight_op = node->domain.empty() ? (op == "Conv" || op == "MatMul" || op == "Gemm")
                                          : node->domain == "pyflame_rt" && (op == "FusedConv" || op == "FusedMatMul");
    if (!weight_op || index != 1) return false;
  }
  return true;
}

}  // namespace pyflame_rt
