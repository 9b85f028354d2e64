#include "compiler/passes/bn_to_depthwise_conv.h"

#include <cmath>
#include <map>

namespace pyflame_rt {

namespace {

// The activations activation_fusion folds into a convolution with no parameters to check.
bool fusable_activation(const Node& n) {
  if (!n.domain.empty()) return false;
  for (const char* op : {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Elu"}) {
    if (n.op_type == op) return true;
  }
  return false;
}

bool rank4(const Graph& g, const std::string& value) {
  const ValueInfo* v = g.find_value_info(value);
  return v && v->shape.rank_known && v->shape.rank() == 4;
}

}  // namespace

Status BnToDepthwiseConv::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, std::vector<size_t>> readers;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& in : graph.nodes[i].inputs) if (!in.empty()) readers[in].push_back(i);
  }
  for (Node& bn : graph.nodes) {
    if (!bn.domain.empty() || bn.op_type != "BatchNormalization" || bn.inputs.size() < 5) continue;
    if (bn.attr_int("training_mode", 0) != 0 || bn.outputs.empty()) continue;
    bool extra_outputs = false;
    for (size_t k = 1; k < bn.outputs.size(); ++k) extra_outputs |= !bn.outputs[k].empty();
    const std::string& y = bn.outputs[0];
    if (extra_outputs || uses[y] != 1 || readers[y].size() != 1 || !fusable_activation(graph.nodes[readers[y][0]])) continue;
    if (!rank4(graph, bn.inputs[0]) || graph.find_output(y)) continue;
    const Tensor* stats[4];
    bool ok = true;
    for (int k = 0; k < 4 && ok; ++k) {
      stats[k] = constant_of(graph, bn.inputs[static_cast<size_t>(k) + 1], DType::kFloat32);
      ok = stats[k] && stats[k]->numel() == stats[0]->numel() && stats[k]->numel() > 0;
    }
    const ValueInfo* x = graph.find_value_info(bn.inputs[0]);
    if (!ok || (x->shape.dims[1].known() && x->shape.dims[1].value != stats[0]->numel())) continue;
    const int64_t C = stats[0]->numel();
    const double eps = bn.attr_float("epsilon", 1e-5f);
    Tensor w(DType::kFloat32, {C, 1, 1, 1}), b(DType::kFloat32, {C});
    for (int64_t c = 0; c < C; ++c) {
      double s = stats[0]->data<float>()[c] / std::sqrt(static_cast<double>(stats[3]->data<float>()[c]) + eps);
      w.data<float>()[c] = static_cast<float>(s);
      b.data<float>()[c] = static_cast<float>(stats[1]->data<float>()[c] - stats[2]->data<float>()[c] * s);
    }
    const std::string wname = y + "_dw_scale", bname = y + "_dw_shift";
    if (graph.initializers.count(wname) || graph.initializers.count(bname)) continue;
    graph.initializers[wname] = std::move(w);
    graph.initializers[bname] = std::move(b);
    const std::string input = bn.inputs[0];
    bn.op_type = "Conv";
    bn.inputs = {input, wname, bname};
    bn.outputs = {y};
    bn.attributes.clear();
    bn.attributes["group"] = Attribute::make_int(C);
    bn.attributes["kernel_shape"] = Attribute::make_ints({1, 1});
    changed = true;
  }
  return Status::OK();
}

}  // namespace pyflame_rt
