#include "compiler/passes/attention_fusion.h"

#include <algorithm>
#include <optional>

namespace pyflame_rt {

namespace {

// The two layouts the pass knows; perms are those of the exporters (see the header).
struct LayoutForm {
  bool batch_first;
  std::vector<int64_t> head_perm;  // Q and V into heads, and the output back out of heads
  std::vector<int64_t> key_perm;   // K into heads, already transposed for Q.K^T
  size_t scores_rank;
};
const LayoutForm kBatchFirst{true, {0, 2, 1, 3}, {0, 2, 3, 1}, 4};
const LayoutForm kSeqFirst{false, {1, 0, 2}, {1, 2, 0}, 3};

// One of Q, K, V split into heads: the projected tensor it came from and what the split says.
struct HeadSplit {
  std::string source;
  Dims source_dims;  // [B, T, E] or [T, B, E]
  int64_t heads = 0;
  std::vector<size_t> nodes;  // the Reshape and Transpose
};

// What is statically known of a rank-3 value's dims (-1 where unknown): its inferred shape,
// and through Slices along the last axis only (torch slices Q, K and V out of one packed
// projection, and ONNX shape inference leaves those slices unshaped) the sliced value's
// leading dims. Nothing when not even the rank is known to be 3.
std::optional<Dims> known_dims(const Graph& g, const std::map<std::string, size_t>& producer, const std::string& value) {
  std::optional<Dims> dims;
  const ValueInfo* vi = g.find_value_info(value);
  if (vi && vi->shape.rank_known) {
    if (vi->shape.rank() != 3) return std::nullopt;
    dims = Dims();
    for (const Dim& d : vi->shape.dims) dims->push_back(d.known() ? d.value : -1);
    if ((*dims)[0] >= 0 && (*dims)[1] >= 0) return dims;
  }
  auto p = producer.find(value);
  if (p == producer.end()) return dims;
  const Node& slice = g.nodes[p->second];
  if (!slice.domain.empty() || slice.op_type != "Slice" || slice.inputs.size() < 4) return dims;
  const Tensor* axes = constant_of(g, slice.inputs[3], DType::kInt64);
  if (!axes || axes->numel() != 1 || (axes->value_as_double(0) != -1 && axes->value_as_double(0) != 2)) return dims;
  std::optional<Dims> data = known_dims(g, producer, slice.inputs[0]);
  if (!data) return dims;
  if (!dims) dims = Dims{-1, -1, -1};
  for (size_t i = 0; i < 2; ++i) if ((*dims)[i] < 0) (*dims)[i] = (*data)[i];
  return dims;
}

class Matcher {
 public:
  explicit Matcher(Graph& g) : g_(g), uses_(use_counts(g)), producer_(producers(g)), claimed_(g.nodes.size(), false) {}

  // The node of type `op` (default domain) producing `value` when `value` has no other
  // reader and the node is not part of another match; records its index in `nodes`.
  const Node* sole_producer(const std::string& value, const char* op, std::vector<size_t>& nodes) const {
    auto it = producer_.find(value);
    if (it == producer_.end() || claimed_[it->second] || uses_.at(value) != 1) return nullptr;
    const Node& n = g_.nodes[it->second];
    if (!n.domain.empty() || n.op_type != op) return nullptr;
    nodes.push_back(it->second);
    return &n;
  }

  // Walks back through Mul/Div by constant scalars from `value`, multiplying them into `scale`.
  std::string peel_scales(std::string value, double& scale, std::vector<size_t>& nodes) const {
    for (;;) {
      std::vector<size_t> probe;
      const Node* n = sole_producer(value, "Mul", probe);
      if (!n) n = sole_producer(value, "Div", probe);
      if (!n || n->inputs.size() != 2) return value;
      bool is_div = n->op_type == "Div";
      int side = scalar(n->inputs[1]) ? 1 : (!is_div && scalar(n->inputs[0]) ? 0 : -1);
      if (side < 0) return value;
      double c = scalar(n->inputs[static_cast<size_t>(side)])->value_as_double(0);
      if (is_div && c == 0) return value;
      scale = is_div ? scale / c : scale * c;
      nodes.push_back(probe[0]);
      value = n->inputs[static_cast<size_t>(1 - side)];
    }
  }

  // `value` = Transpose(Reshape(source, target), perm) where the Reshape splits source's last
  // axis into heads: [B, T, E] -> [B, T, H, Dh] batch first, [T, B, E] -> [T, B*H, Dh]
  // sequence first. A 0 in the target copies a dim; a Reshape whose numbers do not add up
  // fails on the original graph and on the fused op alike.
  std::optional<HeadSplit> head_split(const std::string& value, const LayoutForm& form,
                                      const std::vector<int64_t>& perm) const {
    HeadSplit split;
    const Node* t = sole_producer(value, "Transpose", split.nodes);
    if (!t || t->attr_ints("perm") != perm) return std::nullopt;
    const Node* r = sole_producer(t->inputs[0], "Reshape", split.nodes);
    if (!r || r->inputs.size() != 2 || r->attr_int("allowzero", 0) != 0) return std::nullopt;
    const Tensor* target = constant_of(g_, r->inputs[1], DType::kInt64);
    const ValueInfo* src = g_.find_value_info(r->inputs[0]);
    if (!target || (src && src->dtype != DType::kFloat32)) return std::nullopt;
    std::optional<Dims> s = known_dims(g_, producer_, r->inputs[0]);
    if (!s || !src) return std::nullopt;  // float32 must be known: the kernel is float only
    split.source = r->inputs[0];
    split.source_dims = *s;
    Dims tg;
    for (int64_t i = 0; i < target->numel(); ++i) tg.push_back(static_cast<int64_t>(target->value_as_double(i)));
    // Target dim i keeps source dim i: copied (0) or equal to a known source dim.
    auto keeps = [&](size_t i) { return tg[i] == 0 || (tg[i] > 0 && tg[i] == (*s)[i]); };
    const int64_t width = (*s)[2];
    if (form.batch_first) {
      if (tg.size() != 4 || !keeps(0) || !keeps(1) || tg[2] <= 0 || (tg[3] <= 0 && tg[3] != -1)) return std::nullopt;
      split.heads = tg[2];
      if (width >= 0 && (width % split.heads != 0 || (tg[3] > 0 && tg[3] * split.heads != width))) return std::nullopt;
    } else {
      const int64_t batch = (*s)[1];
      if (tg.size() != 3 || !keeps(0) || tg[2] <= 0) return std::nullopt;
      if (tg[1] == 0) {
        split.heads = 1;
      } else if (tg[1] > 0 && batch > 0 && tg[1] % batch == 0) {
        split.heads = tg[1] / batch;
      } else if (tg[1] == -1 && width > 0 && width % tg[2] == 0) {
        split.heads = width / tg[2];
      } else {
        return std::nullopt;
      }
      if (width >= 0 && width != split.heads * tg[2]) return std::nullopt;
    }
    return split;
  }

  const Tensor* scalar(const std::string& name) const {
    auto it = g_.initializers.find(name);
    return it != g_.initializers.end() && it->second.numel() == 1 && dtype_is_float(it->second.dtype()) ? &it->second
                                                                                                       : nullptr;
  }
  int uses(const std::string& value) const {
    auto it = uses_.find(value);
    return it == uses_.end() ? 0 : it->second;
  }
  void claim(const std::vector<size_t>& nodes) { for (size_t i : nodes) claimed_[i] = true; }
  bool claimed(size_t i) const { return claimed_[i]; }
  const std::vector<bool>& claimed_nodes() const { return claimed_; }

 private:
  Graph& g_;
  std::map<std::string, int> uses_;
  std::map<std::string, size_t> producer_;
  std::vector<bool> claimed_;
};

// A mask the kernel can take: static float32, broadcasting to [B, H, L, S] without growing the
// scores. Sequence-first scores are [B*H, L, S]: a rank-3 mask there must have dim 0 == 1.
bool supported_mask(const Graph& g, const std::string& mask, const Dims& bhls, bool batch_first) {
  const ValueInfo* vi = g.find_value_info(mask);
  if (!vi || vi->dtype != DType::kFloat32 || !vi->shape.rank_known || !vi->shape.fully_known()) return false;
  size_t rank = vi->shape.rank();
  if (rank > (batch_first ? 4u : 3u)) return false;
  if (!batch_first && rank == 3 && vi->shape.dims[0].value != 1) return false;
  for (size_t i = 0; i < rank; ++i) {
    int64_t d = vi->shape.dims[rank - 1 - i].value;
    if (d != 1 && d != bhls[3 - i]) return false;
  }
  return true;
}

// A zero in the closing Reshape's target copies an input dim: only the leading dims the fused
// output shares with the old input ([B, L] batch first, [L] sequence first) may be copied.
bool closing_reshape_still_valid(const Graph& g, const Node& reshape, bool batch_first) {
  if (reshape.inputs.size() != 2 || reshape.attr_int("allowzero", 0) != 0) return false;
  const Tensor* target = constant_of(g, reshape.inputs[1], DType::kInt64);
  if (!target) return false;
  for (int64_t i = 0; i < target->numel(); ++i) {
    if (target->value_as_double(i) == 0 && i >= (batch_first ? 2 : 1)) return false;
  }
  return true;
}

}  // namespace

Status AttentionFusion::run(Graph& graph, bool& changed) {
  Matcher m(graph);
  std::vector<Node> added;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& softmax = graph.nodes[i];
    if (m.claimed(i) || !softmax.domain.empty() || softmax.op_type != "Softmax") continue;
    std::vector<size_t> nodes = {i};
    // Forward: Softmax -> MatMul(P, Vh) -> Transpose back -> Reshape (kept).
    const std::string& probs = softmax.outputs[0];
    size_t i_pv = 0;
    bool found_pv = false;
    for (size_t j = 0; j < graph.nodes.size() && !found_pv; ++j) {
      const Node& n = graph.nodes[j];
      if (!m.claimed(j) && n.domain.empty() && n.op_type == "MatMul" && n.inputs.size() == 2 && n.inputs[0] == probs) {
        i_pv = j;
        found_pv = true;
      }
    }
    if (!found_pv || m.uses(probs) != 1) continue;
    const Node& pv = graph.nodes[i_pv];
    nodes.push_back(i_pv);
    size_t i_back = 0, i_close = 0;
    bool found_back = false;
    for (size_t j = 0; j < graph.nodes.size() && !found_back; ++j) {
      const Node& n = graph.nodes[j];
      if (!m.claimed(j) && n.domain.empty() && n.op_type == "Transpose" && n.inputs[0] == pv.outputs[0]) {
        i_back = j;
        found_back = true;
      }
    }
    if (!found_back || m.uses(pv.outputs[0]) != 1) continue;
    const Node& back = graph.nodes[i_back];
    const LayoutForm* form = back.attr_ints("perm") == kBatchFirst.head_perm ? &kBatchFirst
                           : back.attr_ints("perm") == kSeqFirst.head_perm  ? &kSeqFirst
                                                                            : nullptr;
    if (!form || m.uses(back.outputs[0]) != 1) continue;
    nodes.push_back(i_back);
    bool found_close = false;
    for (size_t j = 0; j < graph.nodes.size() && !found_close; ++j) {
      const Node& n = graph.nodes[j];
      if (n.domain.empty() && n.op_type == "Reshape" && !n.inputs.empty() && n.inputs[0] == back.outputs[0]) {
        i_close = j;
        found_close = true;
      }
    }
    if (!found_close || !closing_reshape_still_valid(graph, graph.nodes[i_close], form->batch_first)) continue;
    // The softmax over the last axis (opset < 13 flattens from `axis`: the last axis is still
    // a plain last-axis softmax).
    int64_t axis = softmax.attr_int("axis", graph.opset("") < 13 ? 1 : -1);
    if (axis != -1 && axis != static_cast<int64_t>(form->scores_rank) - 1) continue;
    // Backward: scores = [Mul/Div] (MatMul(Qh, Kt) [* scale]) [+ mask].
    double scale = 1.0;
    std::string mask;
    std::string scores = softmax.inputs[0];
    std::vector<size_t> probe;
    if (const Node* add = m.sole_producer(scores, "Add", probe); add && add->inputs.size() == 2) {
      for (int side = 0; side < 2 && mask.empty(); ++side) {
        std::vector<size_t> inner;
        double s = 1.0;
        std::string below = m.peel_scales(add->inputs[static_cast<size_t>(side)], s, inner);
        if (m.sole_producer(below, "MatMul", inner)) {
          mask = add->inputs[static_cast<size_t>(1 - side)];
          scores = add->inputs[static_cast<size_t>(side)];
          nodes.push_back(probe[0]);
        }
      }
      if (mask.empty()) continue;
    }
    scores = m.peel_scales(scores, scale, nodes);
    const Node* qk = m.sole_producer(scores, "MatMul", nodes);
    if (!qk || qk->inputs.size() != 2) continue;
    std::string q_heads = m.peel_scales(qk->inputs[0], scale, nodes);
    std::string k_heads = m.peel_scales(qk->inputs[1], scale, nodes);
    std::optional<HeadSplit> q = m.head_split(q_heads, *form, form->head_perm);
    std::optional<HeadSplit> k = m.head_split(k_heads, *form, form->key_perm);
    std::optional<HeadSplit> v = m.head_split(pv.inputs[1], *form, form->head_perm);
    if (!q || !k || !v || q->heads != k->heads || q->heads != v->heads) continue;
    // Q, K, V agree in batch (known: the kernel does not broadcast it); K and V in length and
    // Q and K in width where known (the original MatMuls would reject a mismatch too).
    const size_t b_axis = form->batch_first ? 0 : 1, t_axis = form->batch_first ? 1 : 0;
    const Dims &qd = q->source_dims, &kd = k->source_dims, &vd = v->source_dims;
    auto differ = [](int64_t a, int64_t b) { return a >= 0 && b >= 0 && a != b; };
    if (qd[b_axis] < 0 || kd[b_axis] != qd[b_axis] || vd[b_axis] != qd[b_axis] || differ(vd[t_axis], kd[t_axis]) ||
        differ(kd[2], qd[2])) {
      continue;
    }
    const Dims bhls = {qd[b_axis], q->heads, qd[t_axis], kd[t_axis] >= 0 ? kd[t_axis] : vd[t_axis]};
    if (!mask.empty() && !supported_mask(graph, mask, bhls, form->batch_first)) continue;
    for (const HeadSplit* s : {&*q, &*k, &*v}) nodes.insert(nodes.end(), s->nodes.begin(), s->nodes.end());
    m.claim(nodes);

    Node mha;
    mha.domain = "pyflame_rt";
    mha.op_type = "MultiHeadAttention";
    mha.name = (softmax.name.empty() ? back.outputs[0] : softmax.name) + "_attention";
    mha.inputs = {q->source, k->source, v->source};
    if (!mask.empty()) mha.inputs.push_back(mask);
    mha.outputs = {back.outputs[0]};  // the closing Reshape keeps reading this name
    mha.attributes["num_heads"] = Attribute::make_int(q->heads);
    mha.attributes["scale"] = Attribute::make_float(static_cast<float>(scale));
    mha.attributes["batch_first"] = Attribute::make_int(form->batch_first ? 1 : 0);
    // The fused output is Q's [B, L] or [L, B], then V's width; the old [.., H, Dv] type goes.
    Dims out = {qd[0], qd[1], vd[2]};
    if (std::all_of(out.begin(), out.end(), [](int64_t d) { return d >= 0; })) {
      graph.value_info[back.outputs[0]] = {back.outputs[0], DType::kFloat32, Shape::from_dims(out)};
    } else {
      graph.value_info.erase(back.outputs[0]);
    }
    added.push_back(std::move(mha));
  }
  if (added.empty()) return Status::OK();
  erase_nodes(graph, m.claimed_nodes());
  for (auto& n : added) graph.nodes.push_back(std::move(n));
  graph.opset_imports["pyflame_rt"] = 1;
  changed = true;
  return graph.sort_topologically();
}

}  // namespace pyflame_rt
