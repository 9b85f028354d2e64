#include "compiler/passes/layout_assignment.h"

#include <limits>
#include <numeric>

#include "graph/checked_math.h"

namespace pyflame_rt {

namespace {

bool is_conv(const Node& n) {
  return (n.domain.empty() && n.op_type == "Conv") || (n.domain == "pyflame_rt" && n.op_type == "FusedConv");
}

// Ops that compute the same in any channel layout, so a region can flow through them.
bool layout_agnostic(const Node& n) {
  if (is_conv(n)) return true;
  // concat_affine_fusion's Concat + scale/shift + Relu, channels only (as Concat's).
  if (n.domain == "pyflame_rt" && n.op_type == "FusedConcat") return n.attr_int("axis", 1) == 1;
  // Per-channel pool and scale of its input (X, weights): any channel layout of X.
  if (n.domain == "pyflame_rt" && n.op_type == "SqueezeExcite") return true;
  if (!n.domain.empty()) return false;
  // Concat along channels: the CPU device joins whole channel blocks without leaving the
  // blocked layout (DenseNet's and GoogLeNet's concats sit between convolutions).
  if (n.op_type == "Concat") return n.attr_int("axis", 0) == 1 || n.attr_int("axis", 0) == -3;
  static const char* kOps[] = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization",
                               "Relu", "Sigmoid", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Tanh", "Elu",
                               "Add", "Sub", "Mul", "Div"};
  for (const char* op : kOps) if (n.op_type == op) return true;
  return false;
}

bool rank4(const Graph& g, const std::string& value) {
  const ValueInfo* vi = g.find_value_info(value);
  if (!vi) vi = g.find_output(value);
  return vi && vi->shape.rank_known && vi->shape.rank() == 4;
}

// Channels of a convolution from its weights (0 when they are not a constant).
int64_t conv_channels(const Graph& g, const Node& conv) {
  if (conv.inputs.size() < 2) return 0;
  auto it = g.initializers.find(conv.inputs[1]);
  // Half-precision weights reach the convolution through a Cast (constant_folding.cpp).
  const Tensor* w = it != g.initializers.end() ? &it->second : half_weight_of(g, conv.inputs[1]);
  if (!w || w->rank() != 4) return 0;
  int64_t group = conv.attr_int("group", 1);
  // group is the model's: W's channels times it may pass int64 (UBSan, kernel_run stop 15),
  // which counts as "many channels" here.
  CheckedInt64 in_channels = CheckedInt64(w->dim(1)) * group;
  return in_channels.overflowed() ? std::numeric_limits<int64_t>::max() : std::max(w->dim(0), in_channels.value());
}

int find(std::vector<int>& parent, int i) {
  while (parent[static_cast<size_t>(i)] != i) {
    parent[static_cast<size_t>(i)] = parent[static_cast<size_t>(parent[static_cast<size_t>(i)])];
    i = parent[static_cast<size_t>(i)];
  }
  return i;
}

bool set_string(Node& n, const char* key, const std::string& value) {
  if (n.has_attr(key) && n.attr_string(key, "") == value) return false;
  n.attributes[key] = Attribute::make_string(value);
  return true;
}

}  // namespace

Status LayoutAssignment::run(Graph& graph, bool& changed) {
  const size_t count = graph.nodes.size();
  std::vector<bool> member(count, false);
  for (size_t i = 0; i < count; ++i) {
    const Node& n = graph.nodes[i];
    member[i] = layout_agnostic(n) && !n.outputs.empty() && rank4(graph, n.outputs[0]);
  }
  // Regions: members joined through the 4-D values one produces and another reads.
  std::vector<int> parent(count);
  std::iota(parent.begin(), parent.end(), 0);
  std::map<std::string, size_t> producer = producers(graph);
  for (size_t i = 0; i < count; ++i) {
    if (!member[i]) continue;
    for (const auto& in : graph.nodes[i].inputs) {
      auto p = producer.find(in);
      if (p == producer.end() || !member[p->second] || !rank4(graph, in)) continue;
      parent[static_cast<size_t>(find(parent, static_cast<int>(i)))] = find(parent, static_cast<int>(p->second));
    }
  }
  std::vector<bool> blocked(count, false);  // by region root
  for (size_t i = 0; i < count; ++i) {
    if (member[i] && is_conv(graph.nodes[i]) && conv_channels(graph, graph.nodes[i]) >= 8) {
      blocked[static_cast<size_t>(find(parent, static_cast<int>(i)))] = true;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    Node& conv = graph.nodes[i];
    if (!member[i] || !is_conv(conv)) continue;
    int root = find(parent, static_cast<int>(i));
    const std::string layout = blocked[static_cast<size_t>(root)] ? "blocked" : "plain";
    changed |= set_string(conv, "pyflame_rt_dst_layout", layout);
    auto p = producer.find(conv.inputs[0]);
    bool src_inside = p != producer.end() && member[p->second] && find(parent, static_cast<int>(p->second)) == root;
    if (src_inside) {
      changed |= set_string(conv, "pyflame_rt_src_layout", layout);
    } else if (conv.attributes.erase("pyflame_rt_src_layout") > 0) {
      changed = true;  // an earlier round's choice whose producer is gone
    }
  }
  return Status::OK();
}

}  // namespace pyflame_rt
