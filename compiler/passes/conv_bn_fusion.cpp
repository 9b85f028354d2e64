#include "compiler/passes/conv_bn_fusion.h"

#include <cmath>
#include <map>

namespace pyflame_rt {

Status ConvBnFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& bn = graph.nodes[i];
    if (!bn.domain.empty() || bn.op_type != "BatchNormalization" || bn.inputs.size() < 5) continue;
    if (bn.attr_int("training_mode", 0) != 0 || (bn.outputs.size() > 1 && !bn.outputs[1].empty())) continue;
    auto p = producer.find(bn.inputs[0]);
    if (p == producer.end() || uses[bn.inputs[0]] != 1) continue;
    Node& conv = graph.nodes[p->second];
    if (!conv.domain.empty() || conv.op_type != "Conv" || conv.inputs.size() < 2) continue;
    const Tensor* w = constant_of(graph, conv.inputs[1], DType::kFloat32);
    const Tensor* stats[4];
    bool ok = w != nullptr && uses[conv.inputs[1]] == 1;
    for (int k = 0; k < 4 && ok; ++k) {
      stats[k] = constant_of(graph, bn.inputs[static_cast<size_t>(k) + 1], DType::kFloat32);
      ok = stats[k] && stats[k]->numel() == w->dim(0);
    }
    const Tensor* b = nullptr;
    if (ok && conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
      b = constant_of(graph, conv.inputs[2], DType::kFloat32);
      ok = b && b->numel() == w->dim(0) && uses[conv.inputs[2]] == 1;
    }
    if (!ok || w->dim(0) == 0) continue;  // no output channels: nothing to fold (and no division by 0)
    double eps = bn.attr_float("epsilon", 1e-5f);
    int64_t M = w->dim(0), per = w->numel() / M;
    Tensor nw = w->clone(), nb(DType::kFloat32, {M});
    for (int64_t m = 0; m < M; ++m) {
      double k = stats[0]->data<float>()[m] / std::sqrt(static_cast<double>(stats[3]->data<float>()[m]) + eps);
      for (int64_t j = 0; j < per; ++j) nw.data<float>()[m * per + j] = static_cast<float>(w->data<float>()[m * per + j] * k);
      double bias = b ? b->data<float>()[m] : 0.0;
      nb.data<float>()[m] = static_cast<float>((bias - stats[2]->data<float>()[m]) * k + stats[1]->data<float>()[m]);
    }
    // New names: the originals may be shared with other nodes of a larger graph's history.
    std::string wname = conv.inputs[1] + "_bn", bname = (b ? conv.inputs[2] : conv.outputs[0]) + "_bn_bias";
    graph.initializers[wname] = nw;
    graph.initializers[bname] = nb;
    conv.inputs[1] = wname;
    if (conv.inputs.size() < 3) conv.inputs.resize(3);
    conv.inputs[2] = bname;
    conv.outputs[0] = bn.outputs[0];
    removed[i] = true;
    changed = true;
  }
  erase_nodes(graph, removed);
  return Status::OK();
}

}  // namespace pyflame_rt
