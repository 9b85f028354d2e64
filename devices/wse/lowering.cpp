// The wafer's op table and the per-op description placement tiles (lowering.h).
#include "devices/wse/lowering.h"

#include <algorithm>

namespace pyflame_rt {

namespace {

struct OpEntry {
  const char* domain;
  const char* op;
  MeshOpKind kind;
};

// Every op the wafer lowers. Movement ops only rearrange data (no arithmetic crosses PEs).
const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> table = {
      {"", "MatMul", MeshOpKind::kGemm}, {"", "Gemm", MeshOpKind::kGemm},
      {"pyflame_rt", "FusedMatMul", MeshOpKind::kGemm},
      {"", "Conv", MeshOpKind::kConv}, {"pyflame_rt", "FusedConv", MeshOpKind::kConv},
      {"", "Relu", MeshOpKind::kElementwise}, {"", "LeakyRelu", MeshOpKind::kElementwise},
      {"", "Sigmoid", MeshOpKind::kElementwise}, {"", "Tanh", MeshOpKind::kElementwise},
      {"", "Clip", MeshOpKind::kElementwise}, {"", "HardSigmoid", MeshOpKind::kElementwise},
      {"", "HardSwish", MeshOpKind::kElementwise}, {"", "Elu", MeshOpKind::kElementwise},
      {"", "Erf", MeshOpKind::kElementwise}, {"", "Exp", MeshOpKind::kElementwise},
      {"", "Sqrt", MeshOpKind::kElementwise}, {"", "Neg", MeshOpKind::kElementwise},
      {"", "Abs", MeshOpKind::kElementwise}, {"", "Reciprocal", MeshOpKind::kElementwise},
      {"", "Pow", MeshOpKind::kElementwise}, {"", "Add", MeshOpKind::kElementwise},
      {"", "Sub", MeshOpKind::kElementwise}, {"", "Mul", MeshOpKind::kElementwise},
      {"", "Div", MeshOpKind::kElementwise}, {"", "Max", MeshOpKind::kElementwise},
      {"", "Min", MeshOpKind::kElementwise}, {"", "PRelu", MeshOpKind::kElementwise},
      {"com.microsoft", "Gelu", MeshOpKind::kElementwise}, {"", "Gelu", MeshOpKind::kElementwise},
      {"", "Identity", MeshOpKind::kMovement}, {"", "Dropout", MeshOpKind::kMovement},
      {"", "MaxPool", MeshOpKind::kPool}, {"", "AveragePool", MeshOpKind::kPool},
      {"", "GlobalAveragePool", MeshOpKind::kPool}, {"", "GlobalMaxPool", MeshOpKind::kPool},
      {"", "BatchNormalization", MeshOpKind::kNorm}, {"", "LayerNormalization", MeshOpKind::kNorm},
      {"", "Softmax", MeshOpKind::kSoftmax}, {"", "LogSoftmax", MeshOpKind::kSoftmax},
      {"pyflame_rt", "MultiHeadAttention", MeshOpKind::kAttention},
      {"", "GRU", MeshOpKind::kRecurrent},
      {"", "ReduceMean", MeshOpKind::kReduce}, {"", "ReduceSum", MeshOpKind::kReduce},
      {"", "ReduceMax", MeshOpKind::kReduce},
      {"", "Reshape", MeshOpKind::kMovement}, {"", "Flatten", MeshOpKind::kMovement},
      {"", "Transpose", MeshOpKind::kMovement}, {"", "Concat", MeshOpKind::kMovement},
      {"", "Squeeze", MeshOpKind::kMovement}, {"", "Unsqueeze", MeshOpKind::kMovement},
      {"", "Slice", MeshOpKind::kMovement}, {"", "Split", MeshOpKind::kMovement},
      {"", "Gather", MeshOpKind::kMovement}, {"", "Expand", MeshOpKind::kMovement},
  };
  return table;
}

const OpEntry* find_entry(const Node& node) {
  std::string domain = node.domain == "ai.onnx" ? "" : node.domain;
  for (const OpEntry& e : op_table()) {
    if (domain == e.domain && node.op_type == e.op) return &e;
  }
  return nullptr;
}

DType dtype_of(const Graph& graph, const std::string& name) {
  if (auto w = graph.initializers.find(name); w != graph.initializers.end()) return w->second.dtype();
  const ValueInfo* info = graph.find_value_info(name);
  return info ? info->dtype : DType::kUndefined;
}

// Dims of `name` from the initializers or the shape map; empty optional when unknown.
bool dims_of(const Graph& graph, const ShapeMap& shapes, const std::string& name, Dims* out) {
  if (auto w = graph.initializers.find(name); w != graph.initializers.end()) {
    *out = w->second.dims();
    return true;
  }
  if (auto s = shapes.find(name); s != shapes.end()) {
    *out = s->second;
    return true;
  }
  return false;
}

int64_t product(const Dims& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to && i < d.size(); ++i) p *= d[i];
  return p;
}

}  // namespace

ShapeMap known_shapes(const Graph& graph) {
  ShapeMap m;
  auto add = [&](const ValueInfo& v) {
    if (!v.shape.rank_known || !v.shape.fully_known()) return;
    Dims d;
    for (const Dim& x : v.shape.dims) d.push_back(x.value);
    m[v.name] = d;
  };
  for (const auto& v : graph.inputs) add(v);
  for (const auto& v : graph.outputs) add(v);
  for (const auto& [name, v] : graph.value_info) add(v);
  for (const auto& [name, t] : graph.initializers) m[name] = t.dims();
  return m;
}

const std::vector<OpSupport>& wse_supported_ops() {
  static const std::vector<OpSupport> ops = [] {
    std::vector<OpSupport> v;
    for (const OpEntry& e : op_table()) v.push_back({e.domain, e.op});
    return v;
  }();
  return ops;
}

bool is_anchor_kind(MeshOpKind kind) {
  return kind == MeshOpKind::kGemm || kind == MeshOpKind::kConv || kind == MeshOpKind::kAttention ||
         kind == MeshOpKind::kRecurrent;
}

std::string wse_why_not(const Graph& graph, const Node& node) {
  const OpEntry* e = find_entry(node);
  if (!e) return "op " + (node.domain.empty() ? "" : node.domain + ".") + node.op_type + " is not lowered to the wafer";
  // The wafer computes in float32: every tensor flowing between nodes must be float32; integer
  // initializers (Reshape's shape, Slice's starts, Gather's constant indices) are parameters.
  auto check = [&](const std::string& name, const char* role) -> std::string {
    if (name.empty()) return "";
    DType t = dtype_of(graph, name);
    bool constant = graph.initializers.count(name) > 0;
    if (t == DType::kFloat32 || t == DType::kUndefined) return "";
    if (constant && (t == DType::kInt64 || t == DType::kInt32)) return "";
    return std::string("dtype ") + dtype_name(t) + " of " + role + " '" + name +
           "' is not supported (the wafer runs float32)";
  };
  for (const auto& in : node.inputs) if (auto why = check(in, "input"); !why.empty()) return why;
  for (const auto& out : node.outputs) if (auto why = check(out, "output"); !why.empty()) return why;
  ShapeMap none;
  Dims d;
  if (e->kind == MeshOpKind::kConv && node.inputs.size() > 1 && dims_of(graph, none, node.inputs[1], &d) && d.size() != 4) {
    return "only 2-D convolution is lowered to the wafer (weight " + dims_to_string(d) + ")";
  }
  if (node.op_type == "MatMul" || node.op_type == "FusedMatMul") {
    const ValueInfo* b = graph.find_value_info(node.inputs.size() > 1 ? node.inputs[1] : "");
    bool constant = node.inputs.size() > 1 && graph.initializers.count(node.inputs[1]);
    if (constant) {
      if (graph.initializers.at(node.inputs[1]).rank() != 2) return "MatMul with a batched B is not lowered to the wafer";
    } else if (!b || !b->shape.rank_known || b->shape.rank() != 2) {
      return "MatMul with a batched or unknown-rank B is not lowered to the wafer";
    }
  }
  if (node.op_type == "Gather" && (node.inputs.size() < 2 || !graph.initializers.count(node.inputs[1]))) {
    return "Gather with run-time indices is not lowered to the wafer";
  }
  return "";
}

Expected<MeshOp> describe_op(const Graph& graph, const Node& node, const ShapeMap& shapes) {
  const OpEntry* e = find_entry(node);
  if (!e) return node.error(StatusCode::kInvalidArgument, "op is not lowered to the wafer");
  MeshOp op;
  op.node = node.name;
  op.op_type = node.op_type;
  op.domain = node.domain;
  op.kind = e->kind;
  for (const auto& [key, a] : node.attributes) {
    switch (a.kind) {
      case AttrKind::kInt: op.ints[key] = {a.i}; break;
      case AttrKind::kInts: op.ints[key] = a.ints; break;
      case AttrKind::kFloat: op.floats[key] = {a.f}; break;
      case AttrKind::kFloats: op.floats[key] = a.floats; break;
      case AttrKind::kString: op.strings[key] = a.s; break;
      default: break;
    }
  }
  auto need = [&](const std::string& name, Dims* d) -> Status {
    if (!dims_of(graph, shapes, name, d)) {
      return node.error(StatusCode::kInvalidArgument, "the wafer's placement needs the shape of '", name,
                        "', which shape inference left unknown");
    }
    return Status::OK();
  };
  auto add_tensor = [&](const std::string& name, const char* role, const Dims& d) {
    TensorTiling t;
    t.name = name;
    t.role = role;
    t.dims = d;
    op.tensors.push_back(t);
  };
  Dims y;
  RETURN_IF_ERROR(need(node.outputs[0], &y));
  const int64_t out_elems = num_elements(y);
  switch (op.kind) {
    case MeshOpKind::kGemm: {
      Dims a, b;
      RETURN_IF_ERROR(need(node.inputs[0], &a));
      RETURN_IF_ERROR(need(node.inputs[1], &b));
      bool trans_a = node.op_type == "Gemm" && node.attr_int("transA", 0);
      bool trans_b = node.op_type == "Gemm" && node.attr_int("transB", 0);
      op.gemm.k = trans_a ? a[0] : a.back();
      op.gemm.m = trans_a ? a[1] : product(a, 0, a.size() - 1);
      op.gemm.n = trans_b ? b[0] : b.back();
      add_tensor(node.inputs[0], "input", a);
      add_tensor(node.inputs[1], graph.initializers.count(node.inputs[1]) ? "weight" : "input", b);
      if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
        Dims c;
        RETURN_IF_ERROR(need(node.inputs[2], &c));
        add_tensor(node.inputs[2], "bias", c);
        if (graph.initializers.count(node.inputs[2])) op.weight_bytes += num_elements(c) * 4;
      }
      if (graph.initializers.count(node.inputs[1])) op.weight_bytes += num_elements(b) * 4;
      break;
    }
    case MeshOpKind::kConv: {
      Dims x, w;
      RETURN_IF_ERROR(need(node.inputs[0], &x));
      RETURN_IF_ERROR(need(node.inputs[1], &w));
      if (w.size() != 4 || x.size() != 4 || y.size() != 4) {
        return node.error(StatusCode::kInvalidArgument, "only 2-D convolution is lowered to the wafer");
      }
      op.gemm.groups = node.attr_int("group", 1);
      op.gemm.m = y[0] * y[2] * y[3];
      op.gemm.k = w[1] * w[2] * w[3];
      op.gemm.n = w[0];
      add_tensor(node.inputs[0], "input", x);
      add_tensor(node.inputs[1], "weight", w);
      op.weight_bytes = num_elements(w) * 4;
      if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
        add_tensor(node.inputs[2], "bias", {w[0]});
        op.weight_bytes += w[0] * 4;
      }
      if (node.inputs.size() > 3 && !node.inputs[3].empty()) add_tensor(node.inputs[3], "residual", y);
      op.ints["kernel_shape"] = {w[2], w[3]};
      break;
    }
    case MeshOpKind::kAttention: {
      Dims q, k;
      RETURN_IF_ERROR(need(node.inputs[0], &q));
      RETURN_IF_ERROR(need(node.inputs[1], &k));
      bool batch_first = node.attr_int("batch_first", 1) != 0;
      int64_t heads = std::max<int64_t>(1, node.attr_int("num_heads", 1));
      op.gemm.m = q[0] * q[1];                    // queries (all batches)
      op.gemm.k = batch_first ? k[1] : k[0];      // keys per query
      op.gemm.n = q[2];                           // width: heads x head dim
      op.gemm.groups = heads;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (node.inputs[i].empty()) continue;
        Dims d;
        RETURN_IF_ERROR(need(node.inputs[i], &d));
        add_tensor(node.inputs[i], "input", d);
      }
      break;
    }
    case MeshOpKind::kRecurrent: {
      Dims x, w, r;
      RETURN_IF_ERROR(need(node.inputs[0], &x));
      RETURN_IF_ERROR(need(node.inputs[1], &w));
      RETURN_IF_ERROR(need(node.inputs[2], &r));
      op.gemm.m = x[0] * x[1];          // time steps x batch
      op.gemm.k = w[2] + r[2];          // input + hidden
      op.gemm.n = w[0] * w[1];          // directions x gates x hidden
      op.ints["seq_length"] = {x[0]};
      // per_pe: GEMV tiles per time step (the simulator hands the forms it does not tile, such
      // as sequence_lens or clip, to the reference kernel and reports them whole_tensor).
      add_tensor(node.inputs[0], "input", x);
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        if (node.inputs[i].empty()) continue;
        Dims d;
        RETURN_IF_ERROR(need(node.inputs[i], &d));
        bool constant = graph.initializers.count(node.inputs[i]) > 0;
        add_tensor(node.inputs[i], constant ? "weight" : "input", d);
        if (constant) op.weight_bytes += num_elements(d) * 4;
      }
      break;
    }
    case MeshOpKind::kPool: {
      Dims x;
      RETURN_IF_ERROR(need(node.inputs[0], &x));
      op.gemm.m = out_elems;
      if (node.op_type.rfind("Global", 0) == 0) {
        op.gemm.k = product(x, 2, x.size());
      } else {
        std::vector<int64_t> ks = node.attr_ints("kernel_shape");
        op.gemm.k = product(ks, 0, ks.size());
      }
      add_tensor(node.inputs[0], "input", x);
      // Global pools reduce across PEs (per_pe); windowed pools only read a halo from their
      // neighbours, so no arithmetic crosses PEs and the tensor is computed once.
      op.simulation = node.op_type.rfind("Global", 0) == 0 ? "per_pe" : "whole_tensor";
      break;
    }
    case MeshOpKind::kNorm:
    case MeshOpKind::kSoftmax:
    case MeshOpKind::kReduce: {
      Dims x;
      RETURN_IF_ERROR(need(node.inputs[0], &x));
      int64_t rank = static_cast<int64_t>(x.size());
      int64_t axis = node.attr_int("axis", op.kind == MeshOpKind::kNorm && node.op_type == "BatchNormalization" ? 1 : -1);
      if (axis < 0) axis += rank;
      axis = std::clamp<int64_t>(axis, 0, std::max<int64_t>(0, rank - 1));
      if (node.op_type == "BatchNormalization") {
        op.gemm.m = num_elements(x);
        op.gemm.k = 1;
      } else if (op.kind == MeshOpKind::kReduce) {
        op.gemm.m = out_elems;
        op.gemm.k = std::max<int64_t>(1, num_elements(x) / std::max<int64_t>(1, out_elems));
      } else {
        op.gemm.m = product(x, 0, static_cast<size_t>(axis));
        op.gemm.k = product(x, static_cast<size_t>(axis), x.size());
      }
      add_tensor(node.inputs[0], "input", x);
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        if (node.inputs[i].empty() || !graph.initializers.count(node.inputs[i])) continue;
        const Tensor& t = graph.initializers.at(node.inputs[i]);
        if (t.dtype() != DType::kFloat32) continue;
        add_tensor(node.inputs[i], "weight", t.dims());
        op.weight_bytes += t.numel() * 4;
      }
      // LayerNorm and softmax rows are reduced across the PEs of a row (per_pe); BatchNorm and
      // reductions over other axes are computed over the whole tensor.
      const bool row_reduce = node.op_type == "LayerNormalization" || op.kind == MeshOpKind::kSoftmax;
      op.simulation = row_reduce ? "per_pe" : "whole_tensor";
      break;
    }
    case MeshOpKind::kElementwise:
    case MeshOpKind::kMovement: {
      op.gemm.m = out_elems;
      for (const auto& in : node.inputs) {
        if (in.empty()) continue;
        Dims d;
        if (!dims_of(graph, shapes, in, &d)) continue;  // optional parameters may be unknown
        bool constant = graph.initializers.count(in) > 0;
        if (constant && graph.initializers.at(in).dtype() != DType::kFloat32) continue;
        add_tensor(in, constant ? "weight" : "input", d);
        if (constant) op.weight_bytes += num_elements(d) * 4;
      }
      op.simulation = "whole_tensor";
      break;
    }
  }
  add_tensor(node.outputs[0], "output", y);
  return op;
}

}  // namespace pyflame_rt
