#include "compiler/passes/squeeze_excite_fusion.h"

#include <map>

namespace pyflame_rt {

namespace {

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v) if (e != x) return false;
  return true;
}

// A pointwise (every kernel dim 1), stride-1, unpadded, ungrouped convolution of rank `rank`
// with constant f32 weights [M, C, 1, ...] and bias [M], no residual, whose activation is one of
// `acts` ("" = none). Its weights, or null.
const Tensor* pointwise(const Graph& g, const Node& n, size_t rank, std::initializer_list<const char*> acts) {
  const bool fused = n.domain == "pyflame_rt" && n.op_type == "FusedConv";
  if (!fused && !(n.domain.empty() && n.op_type == "Conv")) return nullptr;
  if (n.inputs.size() < 3 || n.inputs[2].empty() || (n.inputs.size() > 3 && !n.inputs[3].empty())) return nullptr;
  const std::string act = n.attr_string("activation", "");
  bool known = false;
  for (const char* a : acts) known |= act == a;
  if (!known || n.attr_int("group", 1) != 1) return nullptr;
  if (n.has_attr("strides") && !all_equal(n.attr_ints("strides"), 1)) return nullptr;
  if (n.has_attr("pads") && !all_equal(n.attr_ints("pads"), 0)) return nullptr;
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return nullptr;
  const Tensor* w = constant_of(g, n.inputs[1], DType::kFloat32);
  const Tensor* b = constant_of(g, n.inputs[2], DType::kFloat32);
  if (!w || !b || w->rank() != rank || b->numel() != w->dim(0)) return nullptr;
  for (size_t d = 2; d < rank; ++d) if (w->dim(d) != 1) return nullptr;
  return w;
}

// The rank of `value` when known and 3-5 (1-D, 2-D and 3-D feature maps), else 0.
size_t feature_map_rank(const Graph& g, const std::string& value) {
  const ValueInfo* v = g.find_value_info(value);
  if (!v || !v->shape.rank_known || v->shape.rank() < 3 || v->shape.rank() > 5) return 0;
  return v->shape.rank();
}

// Whether `pool` is the squeeze's mean over every spatial axis of its rank-`rank` input with the
// axes kept: GlobalAveragePool, or ReduceMean with keepdims and axes {2, ..., rank - 1} (as an
// attribute before opset 18, a constant input from 18; 1-D models and some exporters write it
// so: a speaker model's squeeze-excite over time).
bool spatial_mean(const Graph& g, const Node& pool, size_t rank) {
  if (!pool.domain.empty()) return false;
  if (pool.op_type == "GlobalAveragePool") return true;
  if (pool.op_type != "ReduceMean" || pool.attr_int("keepdims", 1) != 1) return false;
  std::vector<int64_t> axes;
  if (pool.has_attr("axes")) {
    axes = pool.attr_ints("axes");
  } else if (pool.inputs.size() > 1 && !pool.inputs[1].empty()) {
    const Tensor* a = constant_of(g, pool.inputs[1], DType::kInt64);
    if (!a) return false;
    axes.assign(a->data<int64_t>(), a->data<int64_t>() + a->numel());
  }
  std::vector<bool> seen(rank, false);
  for (int64_t a : axes) {
    const int64_t r = static_cast<int64_t>(rank);
    if (a < -r || a >= r) return false;
    seen[static_cast<size_t>(a < 0 ? a + r : a)] = true;
  }
  if (axes.size() != rank - 2 || seen[0] || seen[1]) return false;  // each spatial axis once, nothing else
  return true;
}

}  // namespace

Status SqueezeExciteFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::vector<bool> removed(graph.nodes.size(), false);
  bool any = false;
  auto made_by = [&](const std::string& v) -> Node* {
    auto p = producer.find(v);
    if (p == producer.end() || removed[p->second] || uses[v] != 1 || graph.find_output(v)) return nullptr;
    return &graph.nodes[p->second];
  };
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& mul = graph.nodes[i];
    if (!mul.domain.empty() || mul.op_type != "Mul" || mul.inputs.size() != 2 || mul.inputs[0] == mul.inputs[1]) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& x = mul.inputs[static_cast<size_t>(side)];
      Node* fc2 = made_by(mul.inputs[static_cast<size_t>(1 - side)]);
      if (!fc2) continue;
      const size_t rank = feature_map_rank(graph, x);
      const Tensor* w2 = rank ? pointwise(graph, *fc2, rank, {"Sigmoid", "HardSigmoid"}) : nullptr;
      Node* fc1 = w2 ? made_by(fc2->inputs[0]) : nullptr;
      const Tensor* w1 = fc1 ? pointwise(graph, *fc1, rank, {"", "Relu", "SiLU"}) : nullptr;
      Node* pool = w1 ? made_by(fc1->inputs[0]) : nullptr;
      if (!pool || pool->inputs.empty() || pool->inputs[0] != x || !spatial_mean(graph, *pool, rank) ||
          w2->dim(1) != w1->dim(0) || w2->dim(0) != w1->dim(1)) {
        continue;
      }
      const ValueInfo* xv = graph.find_value_info(x);
      if (xv->shape.dims[1].known() && xv->shape.dims[1].value != w1->dim(1)) continue;
      Node se;
      se.name = mul.name;
      se.domain = "pyflame_rt";
      se.op_type = "SqueezeExcite";
      se.inputs = {x, fc1->inputs[1], fc1->inputs[2], fc2->inputs[1], fc2->inputs[2]};
      se.outputs = mul.outputs;
      const std::string act = fc1->attr_string("activation", "");
      if (!act.empty()) se.attributes["activation"] = Attribute::make_string(act);
      se.attributes["gate"] = Attribute::make_string(fc2->attr_string("activation", ""));
      const std::vector<float> gate_params = fc2->attr_floats("activation_params");
      if (!gate_params.empty()) se.attributes["gate_params"] = Attribute::make_floats(gate_params);
      for (const std::string& v : {pool->outputs[0], fc1->outputs[0], fc2->outputs[0]}) graph.value_info.erase(v);
      removed[producer[pool->outputs[0]]] = removed[producer[fc1->outputs[0]]] = removed[producer[fc2->outputs[0]]] = true;
      // The Mul's place: after X and the weights (initializers), before every reader of Y.
      graph.nodes[i] = std::move(se);
      graph.opset_imports["pyflame_rt"] = 1;
      any = true;
      break;
    }
  }
  if (any) {
    erase_nodes(graph, removed);
    changed = true;
  }
  return Status::OK();
}

}  // namespace pyflame_rt
