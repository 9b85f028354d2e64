#include "compiler/passes/layer_norm_fusion.h"

#include <map>

namespace pyflame_rt {

namespace {

struct Matcher {
  Graph& g;
  std::map<std::string, size_t> producer;
  std::map<std::string, std::vector<size_t>> readers;
  std::map<std::string, int> uses;

  explicit Matcher(Graph& graph) : g(graph), uses(use_counts(graph)) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (const auto& o : g.nodes[i].outputs) producer[o] = i;
      for (const auto& in : g.nodes[i].inputs) readers[in].push_back(i);
    }
  }
  // The only reader of `value` when it has exactly one and it is `op`.
  const Node* sole_reader(const std::string& value, const char* op, size_t* index) {
    auto it = readers.find(value);
    if (it == readers.end() || it->second.size() != 1 || uses[value] != 1) return nullptr;
    const Node& n = g.nodes[it->second[0]];
    if (!n.domain.empty() || n.op_type != op) return nullptr;
    *index = it->second[0];
    return &n;
  }
  bool last_axis_mean(const Node& n) {
    if (!n.domain.empty() || n.op_type != "ReduceMean" || n.attr_int("keepdims", 1) != 1) return false;
    std::vector<int64_t> axes = n.attr_ints("axes");
    if (axes.size() != 1) return false;
    if (axes[0] == -1) return true;
    const ValueInfo* vi = g.find_value_info(n.inputs[0]);
    return vi && vi->shape.rank_known && axes[0] == static_cast<int64_t>(vi->shape.rank()) - 1;
  }
  // A constant scalar (any float dtype) or nullptr.
  const Tensor* scalar(const std::string& name) {
    auto it = g.initializers.find(name);
    return it != g.initializers.end() && it->second.numel() == 1 && dtype_is_float(it->second.dtype()) ? &it->second : nullptr;
  }
  // The other input of a binary node besides `mine`.
  static const std::string& other(const Node& n, const std::string& mine) { return n.inputs[0] == mine ? n.inputs[1] : n.inputs[0]; }
};

}  // namespace

Status LayerNormFusion::run(Graph& graph, bool& changed) {
  Matcher m(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  std::vector<Node> added;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& mean = graph.nodes[i];
    if (removed[i] || !m.last_axis_mean(mean)) continue;
    const std::string& x = mean.inputs[0];
    // d = Sub(x, mean): the Sub reading the mean; d is read by Pow and Div.
    size_t i_sub, i_pow, i_var, i_add, i_sqrt, i_div;
    const Node* sub = m.sole_reader(mean.outputs[0], "Sub", &i_sub);
    if (!sub || sub->inputs[0] != x || sub->inputs[1] != mean.outputs[0]) continue;
    const std::string& d = sub->outputs[0];
    auto rd = m.readers[d];
    if (rd.size() != 2 || m.uses[d] != 2) continue;
    size_t a = rd[0], b = rd[1];
    if (graph.nodes[a].op_type != "Pow") std::swap(a, b);
    const Node& pow = graph.nodes[a];
    const Node& div = graph.nodes[b];
    i_pow = a;
    i_div = b;
    const Tensor* two = pow.inputs.size() == 2 ? m.scalar(pow.inputs[1]) : nullptr;
    if (pow.op_type != "Pow" || pow.inputs[0] != d || !two || two->value_as_double(0) != 2.0) continue;
    if (div.op_type != "Div" || div.inputs[0] != d) continue;
    const Node* var = m.sole_reader(pow.outputs[0], "ReduceMean", &i_var);
    if (!var || !m.last_axis_mean(*var)) continue;
    const Node* add = m.sole_reader(var->outputs[0], "Add", &i_add);
    const Tensor* eps = add ? m.scalar(Matcher::other(*add, var->outputs[0])) : nullptr;
    if (!eps) continue;
    const Node* sqrt = m.sole_reader(add->outputs[0], "Sqrt", &i_sqrt);
    if (!sqrt || div.inputs[1] != sqrt->outputs[0] || m.uses[sqrt->outputs[0]] != 1) continue;
    // Optional affine tail: * gamma, + beta (constants over the last axis).
    std::string out = div.outputs[0], gamma, beta;
    std::vector<size_t> tail;
    size_t i_mul, i_bias;
    if (const Node* mul = m.sole_reader(out, "Mul", &i_mul)) {
      const std::string& gname = Matcher::other(*mul, out);
      if (graph.initializers.count(gname)) { gamma = gname; out = mul->outputs[0]; tail.push_back(i_mul); }
    }
    if (!gamma.empty()) {
      if (const Node* badd = m.sole_reader(out, "Add", &i_bias)) {
        const std::string& bname = Matcher::other(*badd, out);
        if (graph.initializers.count(bname)) { beta = bname; out = badd->outputs[0]; tail.push_back(i_bias); }
      }
    }
    const ValueInfo* xi = graph.find_value_info(x);
    int64_t width = xi && xi->shape.rank_known && !xi->shape.dims.empty() ? xi->shape.dims.back().value : -1;
    if (gamma.empty()) {
      if (width <= 0) continue;  // need the width to make a ones scale
      gamma = out + "_ln_scale";
      graph.initializers[gamma] = Tensor::from_vector<float>({width}, std::vector<float>(static_cast<size_t>(width), 1.0f));
    }
    // LayerNormalization needs scale and bias of the normalised width: reject broadcasts.
    int64_t gn = graph.initializers.at(gamma).numel();
    if ((width > 0 && gn != width) || (!beta.empty() && graph.initializers.at(beta).numel() != gn)) continue;
    Node ln;
    ln.op_type = "LayerNormalization";
    ln.name = mean.name.empty() ? out + "_layer_norm" : mean.name + "_layer_norm";
    ln.inputs = {x, gamma};
    if (!beta.empty()) ln.inputs.push_back(beta);
    ln.outputs = {out};
    ln.attributes["axis"] = Attribute::make_int(-1);
    ln.attributes["epsilon"] = Attribute::make_float(static_cast<float>(eps->value_as_double(0)));
    for (size_t k : {i, i_sub, i_pow, i_var, i_add, i_sqrt, i_div}) removed[k] = true;
    for (size_t k : tail) removed[k] = true;
    added.push_back(std::move(ln));
    changed = true;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i) if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
  for (auto& n : added) kept.push_back(std::move(n));
  graph.nodes = std::move(kept);
  return changed ? graph.sort_topologically() : Status::OK();
}

}  // namespace pyflame_rt
