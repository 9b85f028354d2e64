#include "compiler/passes/activation_fusion.h"

#include <map>

#include "compiler/passes/fusion_util.h"

namespace pyflame_rt {

namespace {

// The activation name and parameters a node computes, or false when it is not a fusable one.
bool activation_of(const Graph& g, const Node& n, int64_t opset, std::string* name, std::vector<float>* params) {
  if (n.inputs.empty()) return false;
  const std::string& op = n.op_type;
  params->clear();
  if (n.domain == "com.microsoft") {
    if (op != "Gelu") return false;
  } else if (!n.domain.empty()) {
    return false;
  } else if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "HardSwish") {
  } else if (op == "LeakyRelu") {
    params->push_back(n.attr_float("alpha", 0.01f));
  } else if (op == "Elu") {
    params->push_back(n.attr_float("alpha", 1.0f));
  } else if (op == "HardSigmoid") {
    *params = {n.attr_float("alpha", 0.2f), n.attr_float("beta", 0.5f)};
  } else if (op == "PRelu") {
    // Its slopes must also fit the producer's output channels: checked by prelu_slopes.
    if (n.inputs.size() != 2 || !constant_of(g, n.inputs[1], DType::kFloat32)) return false;
  } else if (op == "Clip") {
    if (opset < 11) {
      *params = {n.attr_float("min", -3.4e38f), n.attr_float("max", 3.4e38f)};
    } else {
      *params = {-3.4e38f, 3.4e38f};
      for (size_t i = 1; i <= 2 && i < n.inputs.size(); ++i) {
        if (n.inputs[i].empty()) continue;
        const Tensor* t = constant_of(g, n.inputs[i], DType::kFloat32);
        if (!t || t->numel() != 1) return false;
        (*params)[i - 1] = t->data<float>()[0];
      }
    }
  } else {
    return false;
  }
  *name = op;
  return true;
}

// The rank of `name` when an initializer or a typed value gives it, else -1.
int64_t known_rank(const Graph& g, const std::string& name) {
  auto t = g.initializers.find(name);
  if (t != g.initializers.end()) return static_cast<int64_t>(t->second.rank());
  const ValueInfo* v = g.find_value_info(name);
  return v && v->shape.rank_known ? static_cast<int64_t>(v->shape.rank()) : -1;
}

// The activation PRelu fuses as after `producer`: LeakyRelu when its constant slope is one
// value, PRelu with one slope per output channel (axis 1 of a convolution's output, the last
// axis of a matmul's) as parameters; false when the slope broadcasts any other way.
bool prelu_slopes(const Graph& g, const Node& prelu, const Node& producer, std::string* name,
                  std::vector<float>* params) {
  const Tensor& s = *constant_of(g, prelu.inputs[1], DType::kFloat32);
  bool conv = producer.op_type != "FusedMatMul";
  int64_t rank = known_rank(g, producer.outputs[0]);
  if (rank < 0) rank = known_rank(g, producer.inputs[conv ? 1 : 0]);
  if (rank < 0 && !conv) rank = 1;  // a matmul's output has at least the column axis
  int64_t srank = static_cast<int64_t>(s.rank());
  if (rank < 0 || srank > rank || s.numel() == 0) return false;
  int64_t channel_axis = conv ? 1 : rank - 1;
  for (int64_t i = 0; i < srank; ++i) {
    if (s.dim(static_cast<size_t>(i)) != 1 && rank - srank + i != channel_axis) return false;
  }
  params->assign(s.data<float>(), s.data<float>() + s.numel());
  *name = s.numel() == 1 ? "LeakyRelu" : "PRelu";
  return true;
}

}  // namespace

Status ActivationFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  auto open_producer = [&](size_t i) { return is_open_conv(graph.nodes[i]) || is_open_matmul(graph.nodes[i]); };
  auto fuse = [&](size_t conv_index, const std::string& act, const std::vector<float>& params, const std::string& out) {
    Node& conv = graph.nodes[conv_index];
    if (is_open_conv(conv)) make_fused_conv(graph, conv);
    conv.attributes["activation"] = Attribute::make_string(act);
    if (!params.empty()) conv.attributes["activation_params"] = Attribute::make_floats(params);
    conv.outputs[0] = out;
    changed = true;
  };
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& n = graph.nodes[i];
    if (removed[i]) continue;
    std::string act;
    std::vector<float> params;
    if (activation_of(graph, n, graph.opset(), &act, &params)) {
      auto p = producer.find(n.inputs[0]);
      if (p == producer.end() || removed[p->second] || uses[n.inputs[0]] != 1 || !open_producer(p->second)) continue;
      if (act == "PRelu" && !prelu_slopes(graph, n, graph.nodes[p->second], &act, &params)) continue;
      fuse(p->second, act, params, n.outputs[0]);
      removed[i] = true;
      continue;
    }
    // SiLU: Mul(y, Sigmoid(y)) with y a conv/matmul output read only by these two nodes.
    if (n.domain.empty() && n.op_type == "Mul" && n.inputs.size() == 2) {
      for (int side = 0; side < 2; ++side) {
        const std::string& y = n.inputs[static_cast<size_t>(side)];
        const std::string& s = n.inputs[static_cast<size_t>(1 - side)];
        auto ps = producer.find(s), py = producer.find(y);
        if (ps == producer.end() || py == producer.end() || removed[ps->second] || removed[py->second]) continue;
        const Node& sig = graph.nodes[ps->second];
        if (!sig.domain.empty() || sig.op_type != "Sigmoid" || sig.inputs[0] != y) continue;
        if (uses[y] != 2 || uses[s] != 1 || !open_producer(py->second)) continue;
        fuse(py->second, "SiLU", {}, n.outputs[0]);
        removed[i] = removed[ps->second] = true;
        break;
      }
    }
  }
  erase_nodes(graph, removed);
  return Status::OK();
}

}  // namespace pyflame_rt
