#include "compiler/passes/dead_code_elimination.h"

#include <algorithm>

namespace pyflame_rt {

Status DeadCodeElimination::run(Graph& graph, bool& changed) {
  // Walk backwards (the graph is topologically sorted) so a chain of dead nodes goes in one run.
  std::set<std::string> used;
  for (const auto& o : graph.outputs) used.insert(o.name);
  std::vector<bool> keep(graph.nodes.size(), false);
  for (size_t k = graph.nodes.size(); k-- > 0;) {
    const Node& n = graph.nodes[k];
    bool live = std::any_of(n.outputs.begin(), n.outputs.end(),
                            [&](const std::string& o) { return !o.empty() && used.count(o); });
    if (!live) continue;
    keep[k] = true;
    for (const auto& i : n.inputs) if (!i.empty()) used.insert(i);
    for (const auto& r : subgraph_outer_reads(n)) used.insert(r);
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    if (keep[k]) kept.push_back(std::move(graph.nodes[k]));
    else changed = true;
  }
  graph.nodes = std::move(kept);
  for (auto it = graph.initializers.begin(); it != graph.initializers.end();) {
    if (!used.count(it->first) && !graph.overridable_initializers.count(it->first)) {
      it = graph.initializers.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return Status::OK();
}

}  // namespace pyflame_rt
