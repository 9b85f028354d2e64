#include "compiler/passes/concat_affine_fusion.h"

#include <map>

namespace pyflame_rt {

namespace {

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v) if (e != x) return false;
  return true;
}

// The scale ([C] from weights [C, 1, 1, 1]) and shift ([C], zeros without a bias) of a 1x1
// depthwise convolution over C channels that is a pure per-channel affine map with at most a
// Relu after it: no padding, stride 1, no residual. False for anything else.
bool channel_affine(const Graph& g, const Node& n, std::vector<float>* scale, std::vector<float>* shift) {
  const bool fused = n.domain == "pyflame_rt" && n.op_type == "FusedConv";
  if (!fused && !(n.domain.empty() && n.op_type == "Conv")) return false;
  if (n.inputs.size() < 2 || n.outputs.size() != 1 || (n.inputs.size() > 3 && !n.inputs[3].empty())) return false;
  const std::string act = n.attr_string("activation", "");
  if (!act.empty() && act != "Relu") return false;
  const Tensor* w = constant_of(g, n.inputs[1], DType::kFloat32);
  if (!w || w->rank() != 4 || w->dim(1) != 1 || w->dim(2) != 1 || w->dim(3) != 1) return false;
  const int64_t c = w->dim(0);
  if (n.attr_int("group", 1) != c) return false;
  if (n.has_attr("kernel_shape") && n.attr_ints("kernel_shape") != std::vector<int64_t>{1, 1}) return false;
  if (n.has_attr("strides") && !all_equal(n.attr_ints("strides"), 1)) return false;
  if (n.has_attr("pads") && !all_equal(n.attr_ints("pads"), 0)) return false;
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return false;
  const Tensor* b = nullptr;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    b = constant_of(g, n.inputs[2], DType::kFloat32);
    if (!b || b->numel() != c) return false;
  }
  scale->assign(w->data<float>(), w->data<float>() + c);
  if (b) shift->assign(b->data<float>(), b->data<float>() + c);
  else shift->assign(static_cast<size_t>(c), 0.f);
  return true;
}

bool rank4(const Graph& g, const std::string& value) {
  const ValueInfo* v = g.find_value_info(value);
  return v && v->shape.rank_known && v->shape.rank() == 4;
}

}  // namespace

Status ConcatAffineFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  bool any = false;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    std::vector<float> scale, shift;
    if (!channel_affine(graph, graph.nodes[i], &scale, &shift)) continue;
    const Node& affine = graph.nodes[i];
    auto p = producer.find(affine.inputs[0]);
    if (p == producer.end() || removed[p->second] || uses[affine.inputs[0]] != 1) continue;
    Node& concat = graph.nodes[p->second];
    if (!concat.domain.empty() || concat.op_type != "Concat" || concat.inputs.empty() ||
        graph.find_output(concat.outputs[0]) || !rank4(graph, concat.outputs[0])) {
      continue;
    }
    const int64_t axis = concat.attr_int("axis", 0);
    if (axis != 1 && axis != -3) continue;
    const ValueInfo* cv = graph.find_value_info(concat.outputs[0]);
    if (cv->shape.dims[1].known() && cv->shape.dims[1].value != static_cast<int64_t>(scale.size())) continue;
    // The Concat keeps its place (after every input) and takes the affine map's output, which
    // only nodes after the affine map read: the order stays topological.
    const std::string concat_out = concat.outputs[0];
    concat.domain = "pyflame_rt";
    concat.op_type = "FusedConcat";
    concat.outputs = affine.outputs;
    concat.attributes.clear();
    concat.attributes["axis"] = Attribute::make_int(1);
    concat.attributes["scale"] = Attribute::make_floats(scale);
    concat.attributes["shift"] = Attribute::make_floats(shift);
    const std::string act = affine.attr_string("activation", "");
    if (!act.empty()) concat.attributes["activation"] = Attribute::make_string(act);
    graph.opset_imports["pyflame_rt"] = 1;
    graph.value_info.erase(concat_out);
    removed[i] = true;
    any = true;
  }
  if (any) {
    erase_nodes(graph, removed);
    changed = true;
  }
  return Status::OK();
}

}  // namespace pyflame_rt
