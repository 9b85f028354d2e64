#include "compiler/passes/transpose_reshape_folding.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace pyflame_rt {

Status TransposeReshapeFolding::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  std::map<std::string, std::string> rename;  // outputs of dropped identity transposes
  std::set<std::string> read_by_subgraphs;    // names a rename cannot reach
  for (const auto& n : graph.nodes) for (const auto& r : subgraph_outer_reads(n)) read_by_subgraphs.insert(r);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& n = graph.nodes[i];
    for (auto& in : n.inputs) {
      auto r = rename.find(in);
      if (r != rename.end()) in = r->second;
    }
    if (!n.domain.empty() || n.inputs.empty()) continue;
    auto p = producer.find(n.inputs[0]);
    if (p == producer.end() || removed[p->second] || uses[n.inputs[0]] != 1) continue;
    Node& inner = graph.nodes[p->second];
    if (n.op_type == "Transpose" && inner.domain.empty() && inner.op_type == "Transpose") {
      std::vector<int64_t> p1 = inner.attr_ints("perm"), p2 = n.attr_ints("perm");
      if (p1.empty() || p2.empty() || p1.size() != p2.size()) continue;  // default perms need the rank
      auto in_range = [&](int64_t v) { return v >= 0 && v < static_cast<int64_t>(p1.size()); };
      if (!std::all_of(p2.begin(), p2.end(), in_range)) continue;  // malformed: the kernel reports it
      std::vector<int64_t> composed(p2.size());
      for (size_t k = 0; k < p2.size(); ++k) composed[k] = p1[static_cast<size_t>(p2[k])];
      n.inputs[0] = inner.inputs[0];
      n.attributes["perm"] = Attribute::make_ints(composed);
      removed[p->second] = true;
      changed = true;
      std::vector<int64_t> identity(composed.size());
      std::iota(identity.begin(), identity.end(), 0);
      if (composed == identity && !graph.find_output(n.outputs[0]) && !read_by_subgraphs.count(n.outputs[0])) {
        rename[n.outputs[0]] = n.inputs[0];
        removed[i] = true;
      }
    } else if (n.op_type == "Reshape" && inner.domain.empty() && inner.op_type == "Reshape" && n.inputs.size() == 2) {
      auto target = graph.initializers.find(n.inputs[1]);
      if (target == graph.initializers.end() || n.attr_int("allowzero", 0) != 0) continue;
      std::vector<int64_t> dims = target->second.to_int64_vector();
      if (std::find(dims.begin(), dims.end(), 0) != dims.end()) continue;  // 0 would copy from the inner result
      n.inputs[0] = inner.inputs[0];
      removed[p->second] = true;
      changed = true;
    }
  }
  erase_nodes(graph, removed);
  return Status::OK();
}

}  // namespace pyflame_rt
