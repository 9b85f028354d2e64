#include "compiler/passes/bn_conv_fusion.h"

#include <cmath>
#include <map>

namespace pyflame_rt {

namespace {

bool pads_nothing(const Node& conv) {
  std::string auto_pad = conv.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return false;
  for (int64_t p : conv.attr_ints("pads")) if (p != 0) return false;
  return true;
}

}  // namespace

Status BnConvFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& conv = graph.nodes[i];
    if (!conv.domain.empty() || conv.op_type != "Conv" || conv.inputs.size() < 2 || !pads_nothing(conv)) continue;
    auto p = producer.find(conv.inputs[0]);
    if (p == producer.end() || removed[p->second] || uses[conv.inputs[0]] != 1) continue;
    const Node& bn = graph.nodes[p->second];
    if (!bn.domain.empty() || bn.op_type != "BatchNormalization" || bn.inputs.size() < 5) continue;
    if (bn.attr_int("training_mode", 0) != 0 || (bn.outputs.size() > 1 && !bn.outputs[1].empty())) continue;
    const Tensor* w = constant_of(graph, conv.inputs[1], DType::kFloat32);
    if (!w || w->rank() < 3 || w->numel() == 0) continue;  // an empty W: nothing to fold (and no division by 0)
    const int64_t group = conv.attr_int("group", 1), M = w->dim(0), per_group_in = w->dim(1);
    if (group < 1 || M % group != 0) continue;
    // Only now: group divides M > 0, so C <= W's element count (a huge group overflowed).
    const int64_t C = per_group_in * group, taps = w->numel() / (M * per_group_in);
    const Tensor* stats[4];
    bool ok = true;
    for (int k = 0; k < 4 && ok; ++k) {
      stats[k] = constant_of(graph, bn.inputs[static_cast<size_t>(k) + 1], DType::kFloat32);
      ok = stats[k] && stats[k]->numel() == C;
    }
    const Tensor* b = nullptr;
    if (ok && conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
      b = constant_of(graph, conv.inputs[2], DType::kFloat32);
      ok = b && b->numel() == M;
    }
    if (!ok) continue;
    double eps = bn.attr_float("epsilon", 1e-5f);
    std::vector<double> s(static_cast<size_t>(C)), t(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      s[static_cast<size_t>(c)] = stats[0]->data<float>()[c] / std::sqrt(static_cast<double>(stats[3]->data<float>()[c]) + eps);
      t[static_cast<size_t>(c)] = stats[1]->data<float>()[c] - stats[2]->data<float>()[c] * s[static_cast<size_t>(c)];
    }
    Tensor nw = w->clone(), nb(DType::kFloat32, {M});
    const int64_t out_per_group = M / group;
    for (int64_t o = 0; o < M; ++o) {
      double bias = b ? b->data<float>()[o] : 0.0;
      for (int64_t i = 0; i < per_group_in; ++i) {
        size_t c = static_cast<size_t>((o / out_per_group) * per_group_in + i);
        float* row = nw.data<float>() + (o * per_group_in + i) * taps;
        const float* src = w->data<float>() + (o * per_group_in + i) * taps;
        for (int64_t k = 0; k < taps; ++k) {
          bias += static_cast<double>(src[k]) * t[c];
          row[k] = static_cast<float>(src[k] * s[c]);
        }
      }
      nb.data<float>()[o] = static_cast<float>(bias);
    }
    // New names: the originals may be shared with other nodes.
    std::string wname = conv.inputs[1] + "_bn_in", bname = conv.outputs[0] + "_bn_in_bias";
    graph.initializers[wname] = nw;
    graph.initializers[bname] = nb;
    conv.inputs[0] = bn.inputs[0];
    conv.inputs[1] = wname;
    if (conv.inputs.size() < 3) conv.inputs.resize(3);
    conv.inputs[2] = bname;
    removed[p->second] = true;
    changed = true;
  }
  erase_nodes(graph, removed);
  return Status::OK();
}

}  // namespace pyflame_rt
