// NativeOpTable: which native kernels the CPU device has, as data. Each family of native ops
// (conv, matmul, pool, ...) lists its entries in its own source file through an explicit
// registration function (register_conv_ops, ...), called from one list in native_op.cpp;
// not static self-registration, which a static library drops at link time with the object
// files nobody references. An entry is ONNX Runtime's typed, versioned kernel registration:
//
//   void register_pool_ops(NativeOpTable& t) {
//     t.add({"", "MaxPool", 1, kNativeAnyOpset, {DType::kFloat32}, make_pool_op});
//   }
//
// make_native_op (native_op.h) looks a node up by (domain, op, opset, dtype of input 0) and
// tries the matching factories in priority order; a factory may still decline (return
// nullptr) on attributes or constant inputs. The CPU device's why_not()/capabilities() read
// the same table (plus the reference registry), so placement and kernels cannot disagree.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "devices/cpu/native_op.h"

namespace pyflame_rt {
namespace cpu {

using NativeOpFactory = std::unique_ptr<NativeOp> (*)(const Node& node, int64_t opset, const Graph& graph);

constexpr int64_t kNativeAnyOpset = std::numeric_limits<int64_t>::max();

struct NativeOpEntry {
  std::string domain;  // "" = ai.onnx (so is "ai.onnx"), "pyflame_rt" for the compiler's fused ops
  std::string op_type;
  // Versions [since, until] of the node's domain opset whose semantics the kernel implements.
  int64_t since = 1;
  int64_t until = kNativeAnyOpset;
  std::vector<DType> dtypes;  // element types of input 0 it handles (never empty)
  NativeOpFactory factory = nullptr;
  int priority = 0;  // among the entries matching one node, higher is tried first
};

class NativeOpTable {
 public:
  // The table with every family registered (the list in native_op.cpp).
  static const NativeOpTable& cpu();

  void add(NativeOpEntry entry);
  // The entries for (domain, op) whose opset range holds `opset` (0 = unknown: any) and whose
  // dtypes hold `dtype` (kUndefined = unknown: any), highest priority first.
  std::vector<const NativeOpEntry*> find(const std::string& domain, const std::string& op_type, int64_t opset,
                                         DType dtype) const;
  // "" when find() has an entry, else why not: "no native kernel for Softmax opset 9 with
  // float16 input (native: float, opsets 1+)", or "no native kernel for Erf".
  std::string why_not(const std::string& domain, const std::string& op_type, int64_t opset, DType dtype) const;
  const std::vector<NativeOpEntry>& entries() const { return entries_; }

 private:
  std::vector<NativeOpEntry> entries_;
};

// The element type of the node's first input as far as the graph knows it (initializer,
// graph input/output or value_info), kUndefined when it does not.
DType first_input_dtype(const Graph& graph, const Node& node);

// The families' registration functions (one source file each).
void register_conv_ops(NativeOpTable& t);          // conv_op.cpp
void register_matmul_ops(NativeOpTable& t);        // matmul_op.cpp
void register_attention_ops(NativeOpTable& t);     // attention_op.cpp
void register_pool_ops(NativeOpTable& t);          // pool_op.cpp
void register_eltwise_ops(NativeOpTable& t);       // eltwise_op.cpp
void register_norm_ops(NativeOpTable& t);          // norm_op.cpp
void register_batchnorm_ops(NativeOpTable& t);     // batchnorm_op.cpp
void register_softmax_ops(NativeOpTable& t);       // softmax_op.cpp
void register_movement_ops(NativeOpTable& t);      // movement_op.cpp
void register_copy_ops(NativeOpTable& t);          // copy_op.cpp
void register_squeeze_excite_ops(NativeOpTable& t);  // squeeze_excite_op.cpp
void register_broadcast_ops(NativeOpTable& t);     // broadcast_op.cpp
void register_reduce_ops(NativeOpTable& t);        // reduce_op.cpp
void register_resize_ops(NativeOpTable& t);        // resize_op.cpp
void register_gru_ops(NativeOpTable& t);           // gru_op.cpp
void register_lstm_ops(NativeOpTable& t);          // lstm_op.cpp
void register_rnn_ops(NativeOpTable& t);           // rnn_op.cpp
void register_qlinear_conv_ops(NativeOpTable& t);  // int8_conv.cpp
void register_qdq_ops(NativeOpTable& t);           // int8_qdq.cpp
void register_int8_matmul_ops(NativeOpTable& t);   // int8_matmul.cpp
void register_cast_ops(NativeOpTable& t);          // cast_op.cpp
void register_erf_ops(NativeOpTable& t);           // erf_op.cpp
void register_instance_norm_ops(NativeOpTable& t); // instance_norm_op.cpp
void register_nms_ops(NativeOpTable& t);           // nms_op.cpp
void register_topk_ops(NativeOpTable& t);          // topk_op.cpp
void register_nonzero_ops(NativeOpTable& t);       // nonzero_op.cpp
void register_gather_nd_ops(NativeOpTable& t);     // gather_nd_op.cpp
void register_compare_ops(NativeOpTable& t);       // compare_op.cpp
void register_shape_ops(NativeOpTable& t);         // shape_op.cpp
void register_conv_transpose_ops(NativeOpTable& t);  // conv_transpose_op.cpp

// Every fixed-width element type (all but string): what the byte-copying ops take.
const std::vector<DType>& fixed_width_dtypes();

}  // namespace cpu
}  // namespace pyflame_rt
