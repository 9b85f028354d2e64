#include "compiler/partitioner.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace pyflame_rt {
namespace {

double known_elements(const ValueInfo* info) {
  if (!info || !info->shape.rank_known) return 1;
  double n = 1;
  for (const Dim& d : info->shape.dims) n *= d.known() ? static_cast<double>(std::max<int64_t>(d.value, 1)) : 1.0;
  return n;
}

bool has_subgraph(const Node& n) {
  for (const auto& [key, a] : n.attributes) {
    if (a.kind == AttrKind::kGraph || a.kind == AttrKind::kGraphs) return true;
  }
  return false;
}

// Values node i reads that are not initializers.
std::vector<std::string> runtime_inputs(const Graph& g, const Node& n) {
  std::vector<std::string> out;
  for (const auto& in : n.inputs) {
    if (!in.empty() && !g.initializers.count(in)) out.push_back(in);
  }
  return out;
}

}  // namespace

double node_cost(const Graph& graph, const Node& node) {
  double out = node.outputs.empty() ? 1 : known_elements(graph.find_value_info(node.outputs[0]));
  for (size_t i = 1; i < node.inputs.size(); ++i) {
    auto w = graph.initializers.find(node.inputs[i]);
    if (w == graph.initializers.end() || w->second.rank() < 2) continue;
    const Tensor& t = w->second;
    bool conv = node.op_type.find("Conv") != std::string::npos;
    // Per output element: a conv reads Cin/groups x kernel weights (numel / Cout); a matmul
    // reads K of them (numel / N, N being the output's last dim).
    const ValueInfo* oi = graph.find_value_info(node.outputs[0]);
    double per_output = static_cast<double>(t.numel()) / std::max<int64_t>(t.dim(0), 1);
    if (!conv && oi && oi->shape.rank_known && !oi->shape.dims.empty() && oi->shape.dims.back().known()) {
      per_output = static_cast<double>(t.numel()) / std::max<int64_t>(oi->shape.dims.back().value, 1);
    }
    return out * per_output;
  }
  return out;
}

std::vector<Partition> split_graph(const Graph& graph, const std::vector<size_t>& bounds) {
  const size_t n = graph.nodes.size();
  std::map<std::string, size_t> produced_at, last_read;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& o : graph.nodes[i].outputs) if (!o.empty()) produced_at[o] = i;
    for (const auto& in : runtime_inputs(graph, graph.nodes[i])) last_read[in] = i;
  }
  for (const auto& o : graph.outputs) last_read[o.name] = n;
  std::vector<double> prefix(n + 1, 0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + node_cost(graph, graph.nodes[i]);
  std::vector<Partition> parts;
  for (size_t p = 0; p + 1 < bounds.size(); ++p) {
    Partition part;
    part.name = "p" + std::to_string(p);
    part.cost = prefix[bounds[p + 1]] - prefix[bounds[p]];
    Graph& g = part.graph;
    g.name = graph.name + "/" + part.name;
    g.opset_imports = graph.opset_imports;
    std::set<std::string> produced_here, inputs_seen;
    for (size_t i = bounds[p]; i < bounds[p + 1]; ++i) {
      const Node& node = graph.nodes[i];
      g.nodes.push_back(node);
      for (const auto& in : node.inputs) {
        if (in.empty() || produced_here.count(in)) continue;
        auto w = graph.initializers.find(in);
        if (w != graph.initializers.end()) {
          g.initializers[in] = w->second;  // shares the weight buffer
        } else if (inputs_seen.insert(in).second) {
          const ValueInfo* info = graph.find_value_info(in);
          g.inputs.push_back(info ? *info : ValueInfo{in, DType::kUndefined, Shape::unknown_rank()});
        }
      }
      for (const auto& o : node.outputs) if (!o.empty()) produced_here.insert(o);
    }
    // Carry: what exists by the end of this partition (graph inputs, values made so far) and
    // is read after it or is a graph output.
    std::set<std::string> carry;
    for (const auto& [name, r] : last_read) {
      auto made = produced_at.find(name);
      bool exists = made == produced_at.end() || made->second < bounds[p + 1];
      if (r >= bounds[p + 1] && exists) carry.insert(name);
    }
    for (const auto& name : carry) {
      if (!produced_here.count(name)) continue;
      const ValueInfo* info = graph.find_value_info(name);
      g.outputs.push_back(info ? *info : ValueInfo{name, DType::kUndefined, Shape::unknown_rank()});
    }
    part.carry.assign(carry.begin(), carry.end());
    for (const auto& [name, info] : graph.value_info) {
      if (produced_here.count(name)) g.value_info[name] = info;
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

Expected<std::vector<Partition>> partition_graph(const Graph& graph, int count) {
  if (count < 1) return invalid_argument("partitions: expected >= 1, got ", count);
  const size_t n = graph.nodes.size();
  bool control_flow = std::any_of(graph.nodes.begin(), graph.nodes.end(), has_subgraph);
  if (control_flow || n == 0) count = 1;
  count = static_cast<int>(std::min<size_t>(static_cast<size_t>(count), std::max<size_t>(n, 1)));

  // Where each value is produced and last read (graph outputs: read "after the end").
  std::map<std::string, size_t> produced_at, last_read;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& o : graph.nodes[i].outputs) if (!o.empty()) produced_at[o] = i;
    for (const auto& in : runtime_inputs(graph, graph.nodes[i])) last_read[in] = i;
  }
  for (const auto& o : graph.outputs) last_read[o.name] = n;

  // A cut before node k is allowed when every value crossing it (made before k, read at or
  // after k) has a known dtype: count the untyped crossings per cut with a difference array.
  std::vector<int> untyped(n + 2, 0);
  for (const auto& [name, at] : produced_at) {
    auto r = last_read.find(name);
    if (r == last_read.end() || r->second <= at) continue;
    const ValueInfo* info = graph.find_value_info(name);
    if (info && info->dtype != DType::kUndefined) continue;
    ++untyped[at + 1];
    --untyped[r->second + 1];
  }
  std::vector<bool> cut_ok(n + 1, true);
  int running = 0;
  for (size_t k = 0; k <= n; ++k) {
    running += untyped[k];
    cut_ok[k] = running == 0;
  }
  auto cut_allowed = [&](size_t k) { return cut_ok[k]; };
  std::vector<double> prefix(n + 1, 0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + node_cost(graph, graph.nodes[i]);
  // Cuts nearest to equal shares of the total cost, strictly increasing.
  std::vector<size_t> bounds = {0};
  for (int p = 1; p < count; ++p) {
    double target = prefix[n] * p / count;
    size_t best = 0;
    double best_gap = 0;
    for (size_t k = bounds.back() + 1; k + static_cast<size_t>(count - p) <= n; ++k) {
      double gap = std::fabs(prefix[k] - target);
      if ((best == 0 || gap < best_gap) && cut_allowed(k)) {
        best = k;
        best_gap = gap;
      }
    }
    if (best == 0) break;  // no allowed cut left
    bounds.push_back(best);
  }
  bounds.push_back(n);

  return split_graph(graph, bounds);
}

}  // namespace pyflame_rt
