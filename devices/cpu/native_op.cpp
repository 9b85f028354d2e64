#include "devices/cpu/native_op.h"

#include <algorithm>

#include "devices/cpu/arith_op.h"
#include "devices/cpu/half_weights.h"
#include "devices/cpu/int_reduce_op.h"
#include "devices/cpu/roi_align_op.h"
#include "devices/cpu/scatter_elements_op.h"
#include "devices/cpu/native_op_table.h"

namespace pyflame_rt {
namespace cpu {

namespace {
thread_local uint64_t reference_runs = 0;
}  // namespace

uint64_t reference_runs_on_this_thread() { return reference_runs; }

Status run_reference(const Node& node, int64_t opset, const std::vector<CpuValue*>& inputs,
                     std::vector<CpuValue>& outputs) {
  ++reference_runs;
  KernelFn fn = KernelRegistry::reference().find(node.domain, node.op_type, opset);
  if (!fn) return node.error(StatusCode::kNotImplemented, "no reference kernel");
  std::vector<const Value*> in;
  for (CpuValue* v : inputs) {
    if (!v) { in.push_back(nullptr); continue; }
    const Value& p = v->as_plain();
    in.push_back(p.is_none() ? nullptr : &p);
  }
  // Half weights absorbed from a Cast (half_weights.h): the reference kernel wants one type.
  Value float_weights;
  if (in.size() > 1 && in[0] && in[1] && float_weights_for_reference(node, *in[0], *in[1], &float_weights)) {
    in[1] = &float_weights;
  }
  std::vector<Value> out(outputs.size());
  KernelContext ctx(node, opset, std::move(in), &out, nullptr);
  RETURN_IF_ERROR(fn(ctx));
  for (size_t i = 0; i < out.size(); ++i) outputs[i] = CpuValue::from_plain(std::move(out[i]));
  return Status::OK();
}

void NativeOpTable::add(NativeOpEntry entry) {
  entry.domain = canonical_domain(entry.domain);
  entries_.push_back(std::move(entry));
}

std::vector<const NativeOpEntry*> NativeOpTable::find(const std::string& domain, const std::string& op_type,
                                                      int64_t opset, DType dtype) const {
  const std::string dom = canonical_domain(domain);
  std::vector<const NativeOpEntry*> out;
  for (const NativeOpEntry& e : entries_) {
    if (e.op_type != op_type || e.domain != dom) continue;
    if (opset > 0 && (opset < e.since || opset > e.until)) continue;
    if (dtype != DType::kUndefined && std::find(e.dtypes.begin(), e.dtypes.end(), dtype) == e.dtypes.end()) continue;
    out.push_back(&e);
  }
  // Stable: entries of one priority keep their registration order.
  std::stable_sort(out.begin(), out.end(),
                   [](const NativeOpEntry* a, const NativeOpEntry* b) { return a->priority > b->priority; });
  return out;
}

namespace {

// "float" for tensor(float): the ONNX type name, as ONNX Runtime's messages print it.
std::string short_dtype_name(DType t) {
  std::string n = dtype_onnx_name(t);
  if (n.rfind("tensor(", 0) == 0 && n.back() == ')') n = n.substr(7, n.size() - 8);
  return n;
}

std::string opset_range(int64_t since, int64_t until) {
  if (until == kNativeAnyOpset) return "opsets " + std::to_string(since) + "+";
  if (since == until) return "opset " + std::to_string(since);
  return "opsets " + std::to_string(since) + "-" + std::to_string(until);
}

}  // namespace

std::string NativeOpTable::why_not(const std::string& domain, const std::string& op_type, int64_t opset,
                                   DType dtype) const {
  if (!find(domain, op_type, opset, dtype).empty()) return "";
  const std::string dom = canonical_domain(domain);
  std::string what = dom.empty() ? op_type : dom + "." + op_type;
  std::string offered;
  for (const NativeOpEntry& e : entries_) {
    if (e.op_type != op_type || e.domain != dom) continue;
    std::string types;
    if (e.dtypes == fixed_width_dtypes()) {
      types = "any fixed-width type";
    } else {
      for (DType t : e.dtypes) types += (types.empty() ? "" : "/") + short_dtype_name(t);
    }
    offered += (offered.empty() ? "" : "; ") + types + ", " + opset_range(e.since, e.until);
  }
  if (offered.empty()) return "no native kernel for " + what;
  std::string msg = "no native kernel for " + what;
  if (opset > 0) msg += " opset " + std::to_string(opset);
  if (dtype != DType::kUndefined) msg += " with " + short_dtype_name(dtype) + " input";
  return msg + " (native: " + offered + ")";
}

const std::vector<DType>& fixed_width_dtypes() {
  static const std::vector<DType> types = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64,
                                           DType::kInt8,    DType::kUInt8,   DType::kInt16,    DType::kUInt16,
                                           DType::kInt32,   DType::kUInt32,  DType::kInt64,    DType::kUInt64,
                                           DType::kBool};
  return types;
}

DType first_input_dtype(const Graph& graph, const Node& node) {
  if (node.inputs.empty() || node.inputs[0].empty()) return DType::kUndefined;
  const std::string& name = node.inputs[0];
  if (auto w = graph.initializers.find(name); w != graph.initializers.end()) return w->second.dtype();
  const ValueInfo* info = graph.find_value_info(name);
  return info ? info->dtype : DType::kUndefined;
}

const NativeOpTable& NativeOpTable::cpu() {
  // The one list of families. Explicit calls: each family's object file is then referenced,
  // so the static library cannot drop it (static registrars would silently lose kernels).
  static const NativeOpTable table = [] {
    NativeOpTable t;
    register_conv_ops(t);
    register_conv_transpose_ops(t);
    register_qlinear_conv_ops(t);
    register_qdq_ops(t);
    register_matmul_ops(t);
    register_attention_ops(t);
    register_pool_ops(t);
    register_eltwise_ops(t);
    register_norm_ops(t);
    register_movement_ops(t);
    register_gru_ops(t);
    register_lstm_ops(t);
    register_rnn_ops(t);
    register_reduce_ops(t);
    register_copy_ops(t);
    register_squeeze_excite_ops(t);
    register_batchnorm_ops(t);
    register_softmax_ops(t);
    register_resize_ops(t);
    register_broadcast_ops(t);
    register_int8_matmul_ops(t);
    register_cast_ops(t);
    register_erf_ops(t);
    register_instance_norm_ops(t);
    register_nms_ops(t);
    register_topk_ops(t);
    register_nonzero_ops(t);
    register_gather_nd_ops(t);
    register_compare_ops(t);
    register_shape_ops(t);
    register_arith_ops(t);
    register_int_reduce_ops(t);
    register_roi_align_ops(t);
    register_scatter_elements_ops(t);
    return t;
  }();
  return table;
}

std::unique_ptr<NativeOp> make_native_op(const Node& node, int64_t opset, const Graph& graph, std::string* why_not) {
  const NativeOpTable& table = NativeOpTable::cpu();
  DType dtype = first_input_dtype(graph, node);
  std::vector<const NativeOpEntry*> entries = table.find(node.domain, node.op_type, opset, dtype);
  for (const NativeOpEntry* e : entries) {
    if (std::unique_ptr<NativeOp> op = e->factory(node, opset, graph)) return op;
  }
  if (why_not) {
    *why_not = entries.empty() ? table.why_not(node.domain, node.op_type, opset, dtype)
                               : "the native " + node.op_type + " kernel does not take this node's attributes or "
                                 "constant inputs";
  }
  return nullptr;
}

}  // namespace cpu
}  // namespace pyflame_rt
