#include "devices/cpu/native_op.h"

#include "devices/cpu/half_weights.h"
#include "devices/cpu/int8_ops.h"
#include "devices/cpu/native_ops.h"

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

std::unique_ptr<NativeOp> make_native_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.domain.empty() && node.op_type == "Conv") return make_conv_op(node, opset, graph);
  if (node.domain == "pyflame_rt" && node.op_type == "FusedConv") return make_conv_op(node, opset, graph);
  if ((node.domain.empty() && node.op_type == "QLinearConv") ||
      (node.domain == "pyflame_rt" && node.op_type == "QLinearConvAdd")) {
    return make_qlinear_conv_op(node, opset, graph);
  }
  if (node.domain.empty() && (node.op_type == "QuantizeLinear" || node.op_type == "DequantizeLinear")) {
    return make_qdq_op(node, opset, graph);
  }
  if (node.domain == "pyflame_rt" && node.op_type == "FusedMatMul") return make_matmul_op(node, opset, graph);
  if (node.domain == "pyflame_rt" && node.op_type == "MultiHeadAttention") return make_attention_op(node, opset, graph);
  if (node.domain.empty() && (node.op_type == "MatMul" || node.op_type == "Gemm")) {
    return make_matmul_op(node, opset, graph);
  }
  if (node.domain.empty() && (node.op_type == "MaxPool" || node.op_type == "AveragePool" ||
                              node.op_type == "GlobalAveragePool" || node.op_type == "GlobalMaxPool")) {
    return make_pool_op(node, opset, graph);
  }
  if (node.domain.empty()) {
    if (auto op = make_eltwise_op(node, opset, graph)) return op;
    if (auto op = make_norm_op(node, opset, graph)) return op;
    if (auto op = make_movement_op(node, opset, graph)) return op;
    if (auto op = make_gru_op(node, opset, graph)) return op;
    if (auto op = make_reduce_op(node, opset, graph)) return op;
    if (auto op = make_copy_op(node, opset, graph)) return op;
    if (auto op = make_batchnorm_op(node, opset, graph)) return op;
    if (auto op = make_softmax_op(node, opset, graph)) return op;
    if (auto op = make_resize_op(node, opset, graph)) return op;
    if (auto op = make_broadcast_op(node, opset, graph)) return op;
  }
  return nullptr;
}

}  // namespace cpu
}  // namespace pyflame_rt
