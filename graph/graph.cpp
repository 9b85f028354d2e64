#include "graph/graph.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <sstream>
#include <unordered_map>

namespace pyflame_rt {

Node& Graph::add_node(std::string op_type, std::vector<std::string> in,
                      std::vector<std::string> out, std::string node_name) {
  Node n;
  n.op_type = std::move(op_type);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.name = std::move(node_name);
  nodes.push_back(std::move(n));
  return nodes.back();
}

int64_t Graph::opset(const std::string& domain) const {
  auto it = opset_imports.find(domain);
  if (it == opset_imports.end() && domain == "ai.onnx") it = opset_imports.find("");
  return it == opset_imports.end() ? 0 : it->second;
}

const ValueInfo* Graph::find_input(const std::string& n) const {
  for (const auto& v : inputs) if (v.name == n) return &v;
  return nullptr;
}

const ValueInfo* Graph::find_output(const std::string& n) const {
  for (const auto& v : outputs) if (v.name == n) return &v;
  return nullptr;
}

const ValueInfo* Graph::find_value_info(const std::string& n) const {
  if (const ValueInfo* v = find_input(n)) return v;
  if (const ValueInfo* v = find_output(n)) return v;
  auto it = value_info.find(n);
  return it == value_info.end() ? nullptr : &it->second;
}

namespace {

// Names a subgraph (and its own subgraphs) reads from enclosing scopes.
void collect_outer(const Graph& sub, std::set<std::string>& used) {
  std::set<std::string> local;
  for (const auto& v : sub.inputs) local.insert(v.name);
  for (const auto& kv : sub.initializers) local.insert(kv.first);
  for (const auto& n : sub.nodes) for (const auto& o : n.outputs) local.insert(o);
  for (const auto& n : sub.nodes) {
    for (const auto& i : n.inputs) if (!i.empty() && !local.count(i)) used.insert(i);
    // A nested subgraph may read what this one defines (Faster R-CNN: an If inside an If's
    // branch reads a value of that branch): only the rest comes from the enclosing scopes.
    std::set<std::string> nested;
    for (const auto& kv : n.attributes) {
      if (kv.second.g) collect_outer(*kv.second.g, nested);
      for (const auto& g : kv.second.graphs) collect_outer(*g, nested);
    }
    for (const auto& u : nested) if (!local.count(u)) used.insert(u);
  }
  for (const auto& o : sub.outputs) if (!local.count(o.name)) used.insert(o.name);
}

}  // namespace

Status Graph::sort_topologically(const std::set<std::string>& outer_scope) {
  std::unordered_map<std::string, size_t> producer;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const auto& o : nodes[i].outputs) {
      if (o.empty()) continue;
      auto [it, inserted] = producer.emplace(o, i);
      if (!inserted) {
        return invalid_graph("value '", o, "' is produced by both ", nodes[it->second].describe(),
                             " and ", nodes[i].describe());
      }
    }
  }
  std::set<std::string> available = outer_scope;
  for (const auto& v : inputs) available.insert(v.name);
  for (const auto& kv : initializers) available.insert(kv.first);

  // Implicit inputs of subgraphs (names they use from this scope) are dependencies too.
  std::vector<std::vector<std::string>> deps(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const auto& in : nodes[i].inputs) if (!in.empty()) deps[i].push_back(in);
    for (const auto& kv : nodes[i].attributes) {
      std::set<std::string> used;
      if (kv.second.g) collect_outer(*kv.second.g, used);
      for (const auto& g : kv.second.graphs) collect_outer(*g, used);
      deps[i].insert(deps[i].end(), used.begin(), used.end());
    }
  }

  std::vector<int> missing(nodes.size(), 0);
  std::unordered_map<std::string, std::vector<size_t>> consumers;
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::set<std::string> seen;
    for (const auto& d : deps[i]) {
      if (available.count(d) || !seen.insert(d).second) continue;
      if (!producer.count(d)) {
        return invalid_graph(nodes[i].describe(), ": input '", d,
                             "' is not a graph input, an initializer or the output of any node");
      }
      ++missing[i];
      consumers[d].push_back(i);
    }
  }
  std::deque<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i) if (missing[i] == 0) ready.push_back(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t i = ready.front();
    ready.pop_front();
    order.push_back(i);
    for (const auto& o : nodes[i].outputs) {
      auto it = consumers.find(o);
      if (it == consumers.end()) continue;
      for (size_t c : it->second) if (--missing[c] == 0) ready.push_back(c);
    }
  }
  if (order.size() != nodes.size()) {
    std::string stuck;
    int listed = 0;
    for (size_t i = 0; i < nodes.size() && listed < 5; ++i) {
      if (missing[i] > 0) {
        stuck += (listed++ ? ", " : "") + nodes[i].describe();
      }
    }
    return invalid_graph("graph '", name, "' has a cycle: ", nodes.size() - order.size(),
                         " nodes wait on each other (", stuck, ")");
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  for (size_t i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
  return Status::OK();
}

Status Graph::check_sorted(const std::set<std::string>& outer_scope) const {
  std::set<std::string> defined = outer_scope;
  for (const auto& v : inputs) defined.insert(v.name);
  for (const auto& kv : initializers) defined.insert(kv.first);
  std::set<std::string> produced;
  for (const auto& n : nodes) {
    std::set<std::string> reads;
    for (const auto& in : n.inputs) if (!in.empty()) reads.insert(in);
    for (const auto& kv : n.attributes) {
      if (kv.second.g) collect_outer(*kv.second.g, reads);
      for (const auto& g : kv.second.graphs) collect_outer(*g, reads);
    }
    for (const auto& r : reads) {
      if (defined.count(r)) continue;
      bool later = false;
      for (const auto& m : nodes) {
        later |= std::find(m.outputs.begin(), m.outputs.end(), r) != m.outputs.end();
      }
      return invalid_graph(n.describe(), ": input '", r, "' ",
                           later ? "is produced only after it (nodes out of topological order)"
                                 : "is not a graph input, an initializer or the output of any node");
    }
    for (const auto& o : n.outputs) {
      if (o.empty()) continue;
      if (!produced.insert(o).second || defined.count(o)) {
        return invalid_graph(n.describe(), ": output '", o, "' is already defined before it");
      }
      defined.insert(o);
    }
  }
  return validate(outer_scope);
}

Status Graph::validate(const std::set<std::string>& outer_scope) const {
  std::set<std::string> defined = outer_scope;
  for (const auto& v : inputs) defined.insert(v.name);
  for (const auto& kv : initializers) defined.insert(kv.first);
  for (const auto& n : nodes) for (const auto& o : n.outputs) if (!o.empty()) defined.insert(o);
  for (const auto& o : outputs) {
    if (!defined.count(o.name)) {
      return invalid_graph("graph output '", o.name, "' is produced by no node, input or initializer");
    }
  }
  return Status::OK();
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (const auto& kv : initializers) n += kv.second.numel();
  return n;
}

std::map<std::string, int> Graph::op_histogram() const {
  std::map<std::string, int> h;
  for (const auto& n : nodes) {
    ++h[n.op_type];
    for (const auto& kv : n.attributes) {
      std::vector<const Graph*> subs;
      if (kv.second.g) subs.push_back(kv.second.g.get());
      for (const auto& g : kv.second.graphs) subs.push_back(g.get());
      for (const Graph* g : subs) for (const auto& e : g->op_histogram()) h[e.first] += e.second;
    }
  }
  return h;
}

namespace {

void print_tensor_value(std::ostream& os, const Tensor& t) {
  os << t.summary();
  if (t.numel() > 8 || t.dtype() == DType::kString) return;
  os << "{";
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i) os << ",";
    if (dtype_is_float(t.dtype())) os << t.value_as_double(i); else os << t.value_as_int64(i);
  }
  os << "}";
}

void print_attr(std::ostream& os, const Attribute& a, int indent) {
  switch (a.kind) {
    case AttrKind::kFloat: os << a.f; break;
    case AttrKind::kInt: os << a.i; break;
    case AttrKind::kString: os << '"' << a.s << '"'; break;
    case AttrKind::kTensor: print_tensor_value(os, a.t); break;
    case AttrKind::kGraph: os << "\n" << print_graph(*a.g, indent + 4); break;
    case AttrKind::kFloats:
      os << "[";
      for (size_t i = 0; i < a.floats.size(); ++i) os << (i ? "," : "") << a.floats[i];
      os << "]";
      break;
    case AttrKind::kInts:
      os << "[";
      for (size_t i = 0; i < a.ints.size(); ++i) os << (i ? "," : "") << a.ints[i];
      os << "]";
      break;
    case AttrKind::kStrings:
      os << "[";
      for (size_t i = 0; i < a.strings.size(); ++i) os << (i ? "," : "") << '"' << a.strings[i] << '"';
      os << "]";
      break;
    case AttrKind::kTensors: os << "<" << a.tensors.size() << " tensors>"; break;
    case AttrKind::kGraphs:
      for (const auto& g : a.graphs) os << "\n" << print_graph(*g, indent + 4);
      break;
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + (v[i].empty() ? std::string("_") : "%" + v[i]);
  return s;
}

}  // namespace

std::string print_graph(const Graph& g, int indent) {
  std::ostringstream os;
  std::string pad(static_cast<size_t>(indent), ' ');
  os << pad << "graph " << (g.name.empty() ? "main" : g.name) << " (";
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    os << (i ? ", " : "") << "%" << g.inputs[i].name << ": " << dtype_name(g.inputs[i].dtype)
       << g.inputs[i].shape.to_string();
  }
  os << ") {\n";
  for (const auto& kv : g.initializers) {
    os << pad << "  init %" << kv.first << " = ";
    print_tensor_value(os, kv.second);
    os << "\n";
  }
  for (const auto& n : g.nodes) {
    os << pad << "  " << join(n.outputs) << " = " << (n.domain.empty() ? "" : n.domain + ".")
       << n.op_type << "(" << join(n.inputs) << ")";
    if (!n.attributes.empty()) {
      os << " {";
      bool first = true;
      for (const auto& kv : n.attributes) {  // std::map: sorted, so deterministic
        os << (first ? "" : ", ") << kv.first << "=";
        print_attr(os, kv.second, indent);
        first = false;
      }
      os << "}";
    }
    os << "\n";
  }
  os << pad << "  return ";
  for (size_t i = 0; i < g.outputs.size(); ++i) os << (i ? ", " : "") << "%" << g.outputs[i].name;
  os << "\n" << pad << "}\n";
  return os.str();
}

}  // namespace pyflame_rt
