#include "compiler/passes/mesh_layout.h"

#include "devices/wse/lowering.h"
#include "devices/wse/placement.h"

namespace pyflame_rt {

MeshLayout::MeshLayout() : spec_(wse_spec(WseGeneration::kWse3)) {}

Status MeshLayout::run(Graph& graph, bool& changed) {
  changed = false;
  for (const Node& n : graph.nodes) {
    if (!wse_why_not(graph, n).empty()) return Status::OK();  // not a wafer partition
  }
  auto plan = plan_mesh(graph, spec_);
  if (!plan.ok()) {
    if (plan.status().message().find("shape inference left unknown") != std::string::npos) return Status::OK();
    return plan.status();
  }
  std::map<std::string, std::pair<const MeshOp*, const MeshPartition*>> by_node;
  for (const auto& p : plan->partitions) for (const auto& op : p.ops) by_node[op.node] = {&op, &p};
  for (Node& n : graph.nodes) {
    auto it = by_node.find(n.name);
    if (it == by_node.end()) continue;
    const MeshOp& op = *it->second.first;
    const MeshRect& r = it->second.second->rect;
    std::vector<int64_t> split = {op.split.m_parts, op.split.k_parts, op.split.n_parts, op.split.width(), op.split.height()};
    std::vector<int64_t> rect = {r.x, r.y, r.w, r.h, r.system};
    std::string kind = mesh_op_kind_name(op.kind);
    if (n.attr_ints("pyflame_rt_wse_split") == split && n.attr_ints("pyflame_rt_wse_rect") == rect &&
        n.attr_string("pyflame_rt_wse_kind", "") == kind) {
      continue;
    }
    n.attributes["pyflame_rt_wse_split"] = Attribute::make_ints(split);
    n.attributes["pyflame_rt_wse_rect"] = Attribute::make_ints(rect);
    n.attributes["pyflame_rt_wse_kind"] = Attribute::make_string(kind);
    changed = true;
  }
  return Status::OK();
}

}  // namespace pyflame_rt
