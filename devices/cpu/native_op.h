// Native CPU ops: oneDNN primitives for the nodes the CPU device runs itself (convolution with
// fused post-ops, matmul/Gemm, pooling, eltwise, add). An op is created once per node at
// compile time and builds its primitives on the first run with a given input shape ("reshape
// once, run many"); runs with the same shape reuse them (one ShapePlanCache per op,
// shape_plan_cache.h: bounded, thread-safe). Anything a native op cannot handle at
// run time (an unexpected dtype, say) goes to the reference kernel of the same node.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/cpu/dnnl_util.h"
#include "devices/cpu/shape_plan_cache.h"
#include "devices/packed_weights.h"
#include "devices/ref/kernel.h"

namespace pyflame_rt {
namespace cpu {

// The activation (and its parameters) a pyflame_rt fused op carries (FusedConv, FusedMatMul,
// FusedConcat, QLinearConvAdd, ...; our passes put them only there); none for an ONNX op,
// whose attributes are its schema's: a stray "activation" on a model's MatMul or Conv changes
// nothing, as on the reference device (kernel_run, stop 22: a MatMul with activation =
// LeakyRelu scaled its negative products by 0.01 on the CPU device alone).
inline std::string fused_activation(const Node& node) {
  return node.domain == "pyflame_rt" ? node.attr_string("activation", "") : std::string();
}
inline std::vector<float> fused_activation_params(const Node& node) {
  return node.domain == "pyflame_rt" ? node.attr_floats("activation_params") : std::vector<float>();
}

class NativeOp {
 public:
  virtual ~NativeOp() = default;
  // inputs[i] is nullptr for an omitted optional input; outputs has one entry per node output.
  virtual Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) = 0;

  // Optional, for ops with constant weights they pack per shape (devices/packed_weights.h).
  // export_packed: the packed weights of every plan built so far, named `node`.
  virtual void export_packed(const std::string& node, std::vector<PackedBlob>* out) const {}
  // import_packed: blobs a plan file kept, used instead of packing when the plan of their key
  // is built (a blob that does not fit the kernel chosen then is packed again).
  virtual void import_packed(std::vector<PackedBlob> blobs) {}
  // prepare: builds the plan of an imported blob's key now, ahead of the first run.
  virtual Status prepare(const Dims& key) { return Status::OK(); }
};

// The native op for `node`, or nullptr when the node should run on the reference kernel (then
// `why_not`, if given, says why). `graph` gives access to constant inputs (initializers) such
// as weights and to the dtype of the first input. The kernels are listed in NativeOpTable
// (native_op_table.h) by (domain, op, opset range, dtype).
std::unique_ptr<NativeOp> make_native_op(const Node& node, int64_t opset, const Graph& graph,
                                         std::string* why_not = nullptr);

// Runs the node's reference kernel on plain values (the fallback of every native op). Each call
// counts on the calling thread, so the program can tell that a native op fell back at run time.
Status run_reference(const Node& node, int64_t opset, const std::vector<CpuValue*>& inputs,
                     std::vector<CpuValue>& outputs);

// How many times run_reference ran on this thread (never reset; compare before and after).
uint64_t reference_runs_on_this_thread();

}  // namespace cpu
}  // namespace pyflame_rt
