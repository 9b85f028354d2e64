#include "compiler/passes/gelu_fusion.h"

#include <cmath>
#include <map>

namespace pyflame_rt {

namespace {

// The scalar constant value of `name`, if it is one.
bool scalar_value(const Graph& g, const std::string& name, double* v) {
  auto it = g.initializers.find(name);
  if (it == g.initializers.end() || it->second.numel() != 1 || !dtype_is_float(it->second.dtype())) return false;
  *v = it->second.value_as_double(0);
  return true;
}

bool near(double a, double b) { return std::fabs(a - b) <= 1e-4 * std::fabs(b); }

}  // namespace

Status GeluFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  auto node_of = [&](const std::string& v, const char* op) -> Node* {
    auto it = producer.find(v);
    if (it == producer.end() || removed[it->second]) return nullptr;
    Node& n = graph.nodes[it->second];
    return n.domain.empty() && n.op_type == op ? &n : nullptr;
  };
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& half = graph.nodes[i];  // Mul(m, 0.5)
    if (removed[i] || !half.domain.empty() || half.op_type != "Mul" || half.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      double c;
      const std::string& m_name = half.inputs[static_cast<size_t>(side)];
      if (!scalar_value(graph, half.inputs[static_cast<size_t>(1 - side)], &c) || !near(c, 0.5)) continue;
      Node* m = node_of(m_name, "Mul");  // Mul(x, a)
      if (!m || uses[m_name] != 1 || m->inputs.size() != 2) continue;
      for (int ms = 0; ms < 2; ++ms) {
        const std::string& x = m->inputs[static_cast<size_t>(ms)];
        const std::string& a_name = m->inputs[static_cast<size_t>(1 - ms)];
        Node* a = node_of(a_name, "Add");  // Add(e, 1)
        if (!a || uses[a_name] != 1 || a->inputs.size() != 2) continue;
        int es = scalar_value(graph, a->inputs[1], &c) && near(c, 1.0) ? 0 : (scalar_value(graph, a->inputs[0], &c) && near(c, 1.0) ? 1 : -1);
        if (es < 0) continue;
        const std::string& e_name = a->inputs[static_cast<size_t>(es)];
        Node* e = node_of(e_name, "Erf");
        if (!e || uses[e_name] != 1) continue;
        Node* d = node_of(e->inputs[0], "Div");  // Div(x, sqrt 2)
        if (!d || uses[e->inputs[0]] != 1 || d->inputs[0] != x || !scalar_value(graph, d->inputs[1], &c) ||
            !near(c, std::sqrt(2.0))) {
          continue;
        }
        for (const std::string& v : {m_name, a_name, e_name, e->inputs[0]}) removed[producer[v]] = true;
        half.domain = "com.microsoft";
        half.op_type = "Gelu";
        half.inputs = {x};
        graph.opset_imports["com.microsoft"] = 1;
        changed = true;
        side = 2;  // done with this node
        break;
      }
    }
  }
  erase_nodes(graph, removed);
  return Status::OK();
}

}  // namespace pyflame_rt
