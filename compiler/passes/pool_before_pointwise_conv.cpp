#include "compiler/passes/pool_before_pointwise_conv.h"

#include <map>
#include <utility>

#include "compiler/passes/fusion_util.h"

namespace pyflame_rt {

namespace {

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v) if (e != x) return false;
  return true;
}

// No padding: auto_pad NOTSET or VALID and every pad 0.
bool unpadded(const Node& n) {
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  return (ap == "NOTSET" || ap == "VALID") && all_equal(n.attr_ints("pads", {}), 0);
}

const ValueInfo* rank4(const Graph& g, const std::string& value) {
  const ValueInfo* v = g.find_value_info(value);
  return v && v->shape.rank_known && v->shape.rank() == 4 ? v : nullptr;
}

// Weights [M, C/group, 1, 1]: an initializer or a value of that known shape.
bool pointwise_weights(const Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  if (it != g.initializers.end()) {
    return it->second.rank() == 4 && it->second.dim(2) == 1 && it->second.dim(3) == 1;
  }
  const ValueInfo* w = rank4(g, name);
  return w && w->shape.dims[2].known() && w->shape.dims[3].known() && w->shape.dims[2].value == 1 &&
         w->shape.dims[3].value == 1;
}

}  // namespace

Status PoolBeforePointwiseConv::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  const std::set<std::string> taken = used_names(graph);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& pool = graph.nodes[i];
    if (!pool.domain.empty() || pool.op_type != "AveragePool" || pool.inputs.size() != 1 || pool.outputs.size() != 1) continue;
    const std::vector<int64_t> kernel = pool.attr_ints("kernel_shape", {});
    const std::vector<int64_t> strides = pool.attr_ints("strides", std::vector<int64_t>(kernel.size(), 1));
    if (kernel.size() != 2 || strides.size() != 2 || !unpadded(pool) || pool.attr_int("ceil_mode", 0) != 0 ||
        !all_equal(pool.attr_ints("dilations", {}), 1)) {
      continue;
    }
    // Worth it only when the convolution then runs on at most half the pixels: a stride above
    // 1. Compared one by one: a model's strides may be as large as int64 holds, and their
    // product overflowed (kernel_run, stop 21: strides [2^62, 4]).
    if (strides[0] < 1 || strides[1] < 1 || (strides[0] == 1 && strides[1] == 1)) continue;
    const std::string y = pool.inputs[0];  // a copy: the node is replaced below
    auto p = producer.find(y);
    if (p == producer.end() || p->second >= i || uses[y] != 1 || graph.find_output(y)) continue;
    const size_t ci = p->second;
    Node& conv = graph.nodes[ci];
    if (!is_open_conv(conv) || conv.inputs.size() < 2 || conv.inputs.size() > 3 || conv.outputs.size() != 1) continue;
    const ValueInfo* x = rank4(graph, conv.inputs[0]);
    const ValueInfo* z = rank4(graph, pool.outputs[0]);
    if (!x || !z || !pointwise_weights(graph, conv.inputs[1])) continue;
    if (!unpadded(conv) || !all_equal(conv.attr_ints("strides", {}), 1) ||
        !all_equal(conv.attr_ints("kernel_shape", {1, 1}), 1)) {
      continue;
    }
    std::string t = y + "_pooled_input";
    for (int k = 2; taken.count(t) || graph.value_info.count(t); ++k) t = y + "_pooled_input" + std::to_string(k);
    // The pooled input: x's batch and channels, the pool output's spatial size.
    ValueInfo info{t, x->dtype, Shape::unknown_rank()};
    info.shape = z->shape;
    info.shape.dims[0] = x->shape.dims[0];
    info.shape.dims[1] = x->shape.dims[1];
    graph.value_info[t] = info;
    graph.value_info.erase(y);
    Node new_pool = pool, new_conv = conv;
    new_pool.inputs = {conv.inputs[0]};
    new_pool.outputs = {t};
    new_conv.inputs[0] = t;
    new_conv.outputs = {pool.outputs[0]};
    // The pool takes the convolution's place and the convolution the pool's: x is defined
    // before ci, t at ci < i, and the pool output's readers come after i.
    graph.nodes[ci] = std::move(new_pool);
    graph.nodes[i] = std::move(new_conv);
    uses.erase(y);
    changed = true;
  }
  return Status::OK();
}

}  // namespace pyflame_rt
