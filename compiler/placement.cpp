#include "compiler/placement.h"

#include <algorithm>
#include <map>
#include <set>

namespace pyflame_rt {
namespace {

bool has_subgraph(const Node& n) {
  for (const auto& [key, a] : n.attributes) {
    if (a.kind == AttrKind::kGraph || a.kind == AttrKind::kGraphs) return true;
  }
  return false;
}

// A topological order that stays on one device as long as it can: among the ready nodes,
// those of the current device first (lowest original index); when it has none, switch to the
// highest-priority device that has a ready node (accelerator work is started as early as
// possible and kept together).
std::vector<size_t> device_grouped_order(const Graph& graph, const std::vector<size_t>& owner) {
  const size_t n = graph.nodes.size();
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& o : graph.nodes[i].outputs) if (!o.empty()) producer[o] = i;
  }
  std::vector<std::vector<size_t>> readers(n);
  std::vector<int> pending(n, 0);
  for (size_t i = 0; i < n; ++i) {
    std::set<size_t> deps;
    for (const auto& in : graph.nodes[i].inputs) {
      auto p = producer.find(in);
      if (!in.empty() && p != producer.end()) deps.insert(p->second);
    }
    pending[i] = static_cast<int>(deps.size());
    for (size_t d : deps) readers[d].push_back(i);
  }
  std::set<size_t> ready;
  for (size_t i = 0; i < n; ++i) if (pending[i] == 0) ready.insert(i);
  std::vector<size_t> order;
  size_t current = 0;
  while (!ready.empty()) {
    auto pick = std::find_if(ready.begin(), ready.end(), [&](size_t i) { return owner[i] == current; });
    if (pick == ready.end()) {
      pick = std::min_element(ready.begin(), ready.end(), [&](size_t a, size_t b) { return owner[a] < owner[b]; });
      current = owner[*pick];
    }
    size_t i = *pick;
    ready.erase(pick);
    order.push_back(i);
    for (size_t r : readers[i]) if (--pending[r] == 0) ready.insert(r);
  }
  return order;
}

}  // namespace

Expected<Placement> place_graph(const Graph& graph, const std::vector<const Device*>& devices) {
  if (devices.empty()) return invalid_argument("placement: no devices to place the graph on");
  const size_t n = graph.nodes.size();
  const size_t kNone = devices.size();
  std::vector<size_t> owner(n, kNone);
  std::vector<std::map<size_t, std::string>> reasons(devices.size());

  bool control_flow = std::any_of(graph.nodes.begin(), graph.nodes.end(), has_subgraph);
  if (control_flow) {
    // Subgraph scopes cannot be cut: the whole graph goes to one device.
    for (size_t d = 0; d < devices.size() && owner.front() == kNone; ++d) {
      DeviceClaim c = devices[d]->claim(graph, std::vector<bool>(n, false));
      size_t claimed = 0;
      for (const auto& g : c.groups) claimed += g.size();
      reasons[d] = std::move(c.declined);
      if (claimed == n) std::fill(owner.begin(), owner.end(), d);
    }
  } else {
    std::vector<bool> taken(n, false);
    for (size_t d = 0; d < devices.size(); ++d) {
      DeviceClaim c = devices[d]->claim(graph, taken);
      for (const auto& group : c.groups) {
        for (size_t i : group) {
          if (i < n && !taken[i]) {
            taken[i] = true;
            owner[i] = d;
          }
        }
      }
      reasons[d] = std::move(c.declined);
    }
  }

  Placement placement;
  for (size_t i = 0; i < n; ++i) {
    const Node& node = graph.nodes[i];
    if (owner[i] == kNone) {
      std::string why;
      for (size_t d = 0; d < devices.size(); ++d) {
        auto r = reasons[d].find(i);
        why += (why.empty() ? "" : "; ") + devices[d]->name() + ": " +
               (r != reasons[d].end() ? r->second : std::string("not taken"));
      }
      return not_implemented(node.describe(), ": no device can run it (", why, ")");
    }
    for (size_t d = 0; d < owner[i]; ++d) {
      auto r = reasons[d].find(i);
      placement.declined.push_back(node.describe() + ": not on " + devices[d]->name() + ": " +
                                   (r != reasons[d].end() ? r->second : std::string("not taken")));
    }
  }

  // Reorder so each device's nodes sit together, then cut where the device changes.
  Graph ordered = graph;
  std::vector<size_t> order = device_grouped_order(graph, owner);
  if (order.size() != n) return invalid_graph("placement: the graph has a cycle");
  ordered.nodes.clear();
  std::vector<size_t> ordered_owner;
  for (size_t i : order) {
    ordered.nodes.push_back(graph.nodes[i]);
    ordered_owner.push_back(owner[i]);
  }
  std::vector<size_t> bounds = {0};
  for (size_t k = 1; k < n; ++k) if (ordered_owner[k] != ordered_owner[k - 1]) bounds.push_back(k);
  bounds.push_back(n);
  std::vector<Partition> parts = split_graph(ordered, bounds);
  for (size_t p = 0; p < parts.size(); ++p) {
    placement.partitions.push_back({std::move(parts[p]), n ? ordered_owner[bounds[p]] : 0});
  }
  return placement;
}

}  // namespace pyflame_rt
