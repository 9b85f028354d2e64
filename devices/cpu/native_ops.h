// Factories of the native op families (one source file each). Each returns nullptr when the
// node's constant inputs or attributes are outside what it implements.
#pragma once

#include "devices/cpu/native_op.h"
#include "devices/cpu/native_op_table.h"
#include "devices/cpu/output_destination.h"

namespace pyflame_rt {
namespace cpu {

std::unique_ptr<NativeOp> make_conv_op(const Node& node, int64_t opset, const Graph& graph);     // conv_op.cpp
std::unique_ptr<NativeOp> make_matmul_op(const Node& node, int64_t opset, const Graph& graph);   // matmul_op.cpp
// Products of few rows with small constant weights computed on rows_times_panels, not oneDNN
// (matmul_op.cpp), in this process so far (tests tell the two apart).
uint64_t small_matmul_runs();
std::unique_ptr<NativeOp> make_pool_op(const Node& node, int64_t opset, const Graph& graph);     // pool_op.cpp
// How many AveragePool runs took pool_op.cpp's own nChw16c/nChw8c loop (tests tell which kernel ran).
uint64_t own_average_pool_runs();
std::unique_ptr<NativeOp> make_eltwise_op(const Node& node, int64_t opset, const Graph& graph);  // eltwise_op.cpp
std::unique_ptr<NativeOp> make_norm_op(const Node& node, int64_t opset, const Graph& graph);     // norm_op.cpp
std::unique_ptr<NativeOp> make_movement_op(const Node& node, int64_t opset, const Graph& graph); // movement_op.cpp
std::unique_ptr<NativeOp> make_gru_op(const Node& node, int64_t opset, const Graph& graph);      // gru_op.cpp
std::unique_ptr<NativeOp> make_attention_op(const Node& node, int64_t opset, const Graph& graph); // attention_op.cpp
std::unique_ptr<NativeOp> make_reduce_op(const Node& node, int64_t opset, const Graph& graph);    // reduce_op.cpp
std::unique_ptr<NativeOp> make_copy_op(const Node& node, int64_t opset, const Graph& graph);      // copy_op.cpp
std::unique_ptr<NativeOp> make_batchnorm_op(const Node& node, int64_t opset, const Graph& graph); // batchnorm_op.cpp
std::unique_ptr<NativeOp> make_softmax_op(const Node& node, int64_t opset, const Graph& graph);   // softmax_op.cpp
std::unique_ptr<NativeOp> make_broadcast_op(const Node& node, int64_t opset, const Graph& graph); // broadcast_op.cpp
std::unique_ptr<NativeOp> make_resize_op(const Node& node, int64_t opset, const Graph& graph);    // resize_op.cpp
std::unique_ptr<NativeOp> make_cast_op(const Node& node, int64_t opset, const Graph& graph);      // cast_op.cpp
std::unique_ptr<NativeOp> make_erf_op(const Node& node, int64_t opset, const Graph& graph);       // erf_op.cpp
std::unique_ptr<NativeOp> make_instance_norm_op(const Node& node, int64_t opset, const Graph& graph);  // instance_norm_op.cpp
std::unique_ptr<NativeOp> make_nms_op(const Node& node, int64_t opset, const Graph& graph);            // nms_op.cpp
std::unique_ptr<NativeOp> make_topk_op(const Node& node, int64_t opset, const Graph& graph);           // topk_op.cpp
std::unique_ptr<NativeOp> make_nonzero_op(const Node& node, int64_t opset, const Graph& graph);        // nonzero_op.cpp
std::unique_ptr<NativeOp> make_gather_nd_op(const Node& node, int64_t opset, const Graph& graph);      // gather_nd_op.cpp
std::unique_ptr<NativeOp> make_compare_op(const Node& node, int64_t opset, const Graph& graph);        // compare_op.cpp
std::unique_ptr<NativeOp> make_shape_op(const Node& node, int64_t opset, const Graph& graph);          // shape_op.cpp
std::unique_ptr<NativeOp> make_conv_transpose_op(const Node& node, int64_t opset, const Graph& graph); // conv_transpose_op.cpp

// The plain tensor `v` holds (converted from a native layout if need be) when its elements
// are fixed-width, i.e. any dtype but string; nullptr for an absent input or a non-tensor.
// What the byte-copying ops (Concat, Gather, Expand, ...) take.
inline const Tensor* plain_fixed(CpuValue* v) {
  if (!v) return nullptr;
  const Value& p = v->as_plain();
  return p.is_tensor() && p.tensor.dtype() != DType::kString && p.tensor.dtype() != DType::kUndefined ? &p.tensor
                                                                                                        : nullptr;
}

// The plain float32 tensor `v` holds; nullptr for an absent input, another dtype or a non-tensor.
inline const Tensor* plain_f32(CpuValue* v) {
  if (!v) return nullptr;
  const Value& p = v->as_plain();
  return p.is_tensor() && p.tensor.dtype() == DType::kFloat32 ? &p.tensor : nullptr;
}

// The float32 initializer that feeds input `i` of `node`; nullptr when the input is absent, not
// an initializer or of another dtype (the factories' test for constant weights).
inline const Tensor* constant_f32_input(const Node& node, const Graph& graph, size_t i) {
  if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
  auto it = graph.initializers.find(node.inputs[i]);
  return it != graph.initializers.end() && it->second.dtype() == DType::kFloat32 ? &it->second : nullptr;
}

// A oneDNN post-op for a fused activation name ("Relu", "Clip", ...) with its parameters;
// false when the activation has no oneDNN equivalent (PRelu: see PReluStep).
bool append_activation(dnnl::post_ops& ops, const std::string& name, const std::vector<float>& params);

// A fused PRelu activation (its parameters: one slope per channel, or one for all) applied in
// place to a primitive's output by oneDNN's PReLU primitive. Not a post-op: in oneDNN 2.6 on
// AVX2 only the reference convolution and matmul take a PReLU post-op, two orders of magnitude
// slower than the jit kernels.
struct PReluStep {
  dnnl::prelu_forward prim;
  dnnl::memory slopes;
  dnnl::memory::desc scratch;

  void execute(const dnnl::memory& dst) const;
};
// For an output laid out as `dst` with `slopes` along its axis `channel_axis`; throws dnnl::error.
PReluStep make_prelu_step(const dnnl::memory::desc& dst, const std::vector<float>& slopes, int channel_axis);

}  // namespace cpu
}  // namespace pyflame_rt
