#include "compiler/passes/zero_channel_pruning.h"

#include <map>
#include <set>

#include "graph/checked_math.h"

namespace pyflame_rt {

namespace {

bool is_conv(const Node& n) {
  return (n.domain.empty() && n.op_type == "Conv") || (n.domain == "pyflame_rt" && n.op_type == "FusedConv");
}

bool has_sum(const Node& n) { return n.inputs.size() > 3 && !n.inputs[3].empty(); }

// f(0) == 0 for the node's fused activation (none counts), so a channel that is zero before it
// is zero after it.
bool activation_keeps_zero(const Node& n) {
  std::string act = n.attr_string("activation", "");
  static const std::set<std::string> zero_preserving = {"",     "Relu",  "Tanh", "HardSwish", "LeakyRelu",
                                                        "Elu",  "PRelu", "SiLU", "Gelu"};
  if (zero_preserving.count(act)) return true;
  if (act == "Clip") {
    std::vector<float> p = n.attr_floats("activation_params");
    return p.size() == 2 && p[0] <= 0.0f && p[1] >= 0.0f;
  }
  return false;  // Sigmoid(0) = 0.5, HardSigmoid(0) = beta
}

// The convolution's weights and bias as f32 constants, or nullptr.
struct ConvConstants {
  const Tensor* w = nullptr;
  const Tensor* b = nullptr;  // nullptr: no bias
};

bool conv_constants(const Graph& g, const Node& n, ConvConstants* c) {
  if (n.inputs.size() < 2) return false;
  c->w = constant_of(g, n.inputs[1], DType::kFloat32);
  if (!c->w || c->w->rank() < 3) return false;
  c->b = nullptr;
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    c->b = constant_of(g, n.inputs[2], DType::kFloat32);
    if (!c->b || c->b->numel() != c->w->dim(0)) return false;
  }
  return true;
}

bool bias_zero_at(const ConvConstants& c, int64_t m) { return !c.b || c.b->data<float>()[m] == 0.0f; }

// Output channels of a group-1 convolution that are exactly zero for every input.
std::vector<int64_t> zero_output_channels(const Node& n, const ConvConstants& c) {
  std::vector<int64_t> zero;
  if (!activation_keeps_zero(n)) return zero;
  const int64_t m_count = c.w->dim(0);
  if (m_count == 0) return zero;  // no output channels: nothing to prune (and no division by 0)
  const int64_t per = c.w->numel() / m_count;
  const float* w = c.w->data<float>();
  for (int64_t m = 0; m < m_count; ++m) {
    if (!bias_zero_at(c, m)) continue;
    bool all_zero = true;
    for (int64_t j = 0; j < per && all_zero; ++j) all_zero = w[m * per + j] == 0.0f;
    if (all_zero) zero.push_back(m);
  }
  return zero;
}

// What removing a set of channels from one value touches.
struct Removal {
  std::vector<size_t> depthwise;  // depthwise convolutions that lose the channels (and pass them on)
  std::vector<size_t> readers;    // group-1 convolutions that lose the matching input channels
};

// Whether `channels` of `value` can go: see the header for the rule. Fills `removal`.
bool collect_readers(const Graph& g, const std::string& value, const std::vector<int64_t>& channels,
                     const std::map<std::string, std::vector<size_t>>& readers, const std::set<std::string>& outputs,
                     Removal* removal, int depth = 0) {
  if (outputs.count(value) || depth > 64) return false;
  auto r = readers.find(value);
  if (r == readers.end()) return false;
  for (size_t j : r->second) {
    const Node& n = g.nodes[j];
    if (!is_conv(n) || n.inputs[0] != value) return false;
    for (size_t k = 1; k < n.inputs.size(); ++k) {
      if (n.inputs[k] == value) return false;  // read as weights or residual too
    }
    ConvConstants c;
    if (!conv_constants(g, n, &c)) return false;
    int64_t group = n.attr_int("group", 1);
    CheckedInt64 checked_in = CheckedInt64(c.w->dim(1)) * group;  // group is the model's
    if (checked_in.overflowed()) return false;
    int64_t in_channels = checked_in.value();
    if (group == 1) {
      removal->readers.push_back(j);
      continue;
    }
    // Depthwise, one output per input channel: output channel m reads input channel m only, so
    // a zero input gives its bias there, zero when the bias is.
    if (group != in_channels || c.w->dim(0) != in_channels || c.w->dim(1) != 1 || has_sum(n)) return false;
    if (!activation_keeps_zero(n)) return false;
    for (int64_t m : channels) {
      if (!bias_zero_at(c, m)) return false;
    }
    removal->depthwise.push_back(j);
    if (!collect_readers(g, n.outputs[0], channels, readers, outputs, removal, depth + 1)) return false;
  }
  return true;
}

// `t` without the slices `drop` (sorted) along `axis`.
Tensor drop_slices(const Tensor& t, size_t axis, const std::set<int64_t>& drop) {
  Dims dims = t.dims();
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  int64_t n = dims[axis];
  dims[axis] = n - static_cast<int64_t>(drop.size());
  Tensor out(DType::kFloat32, dims);
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < n; ++i) {
      if (drop.count(i)) continue;
      const float* s = src + (o * n + i) * inner;
      std::copy(s, s + inner, dst);
      dst += inner;
    }
  }
  return out;
}

// Replaces input `k` of `n` (a constant) by `t` under a new name: the original may be shared.
void set_constant_input(Graph& g, Node& n, size_t k, Tensor t) {
  std::string name = n.inputs[k] + "_pruned_" + n.outputs[0];
  g.initializers[name] = std::move(t);
  n.inputs[k] = name;
}

// Drops output channels `drop` from convolution `n` (weights, bias, per-channel PRelu slopes,
// and the channel dimension of its output's recorded shape).
void drop_output_channels(Graph& g, Node& n, const std::set<int64_t>& drop) {
  int64_t before = constant_of(g, n.inputs[1], DType::kFloat32)->dim(0);
  set_constant_input(g, n, 1, drop_slices(*constant_of(g, n.inputs[1], DType::kFloat32), 0, drop));
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    set_constant_input(g, n, 2, drop_slices(*constant_of(g, n.inputs[2], DType::kFloat32), 0, drop));
  }
  std::vector<float> params = n.attr_floats("activation_params");
  if (n.attr_string("activation", "") == "PRelu" && static_cast<int64_t>(params.size()) == before) {
    std::vector<float> kept;
    for (int64_t m = 0; m < before; ++m) {
      if (!drop.count(m)) kept.push_back(params[static_cast<size_t>(m)]);
    }
    n.attributes["activation_params"] = Attribute::make_floats(kept);
  }
  auto vi = g.value_info.find(n.outputs[0]);
  if (vi != g.value_info.end() && vi->second.shape.rank_known && vi->second.shape.rank() > 1) {
    vi->second.shape.dims[1] = Dim(before - static_cast<int64_t>(drop.size()));
  }
}

}  // namespace

Status ZeroChannelPruning::run(Graph& graph, bool& changed) {
  std::map<std::string, std::vector<size_t>> readers;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const std::string& in : graph.nodes[i].inputs) {
      if (!in.empty()) readers[in].push_back(i);
    }
  }
  std::set<std::string> outputs;
  for (const ValueInfo& o : graph.outputs) outputs.insert(o.name);
  std::set<size_t> touched;  // nodes already rewritten this round: their constants changed
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& n = graph.nodes[i];
    if (!is_conv(n) || has_sum(n) || n.attr_int("group", 1) != 1 || touched.count(i)) continue;
    ConvConstants c;
    if (!conv_constants(graph, n, &c)) continue;
    std::vector<int64_t> zero = zero_output_channels(n, c);
    // Keep one channel: a convolution with no output channels is not a valid node.
    if (zero.empty() || static_cast<int64_t>(zero.size()) == c.w->dim(0)) continue;
    Removal removal;
    if (!collect_readers(graph, n.outputs[0], zero, readers, outputs, &removal)) continue;
    bool overlap = false;
    for (size_t j : removal.depthwise) overlap |= touched.count(j) > 0;
    for (size_t j : removal.readers) overlap |= touched.count(j) > 0;
    if (overlap) continue;  // the next round sees the rewritten constants
    std::set<int64_t> drop(zero.begin(), zero.end());
    drop_output_channels(graph, n, drop);
    touched.insert(i);
    for (size_t j : removal.depthwise) {
      Node& dw = graph.nodes[j];
      drop_output_channels(graph, dw, drop);
      dw.attributes["group"] = Attribute::make_int(dw.attr_int("group", 1) - static_cast<int64_t>(drop.size()));
      touched.insert(j);
    }
    for (size_t j : removal.readers) {
      Node& r = graph.nodes[j];
      set_constant_input(graph, r, 1, drop_slices(*constant_of(graph, r.inputs[1], DType::kFloat32), 1, drop));
      touched.insert(j);
    }
    changed = true;
  }
  return Status::OK();
}

}  // namespace pyflame_rt
