// Native int8 ops of the CPU device (one source file each), used for the QLinear* nodes the
// quantization passes make (compiler/quantization/). Each factory returns nullptr when the
// node is outside what it implements (the reference kernel then runs it, and the session's
// fallback list says so).
#pragma once

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

std::unique_ptr<NativeOp> make_qlinear_conv_op(const Node& node, int64_t opset, const Graph& graph);  // int8_conv.cpp
std::unique_ptr<NativeOp> make_int8_matmul_op(const Node& node, int64_t opset, const Graph& graph);  // int8_matmul.cpp
std::unique_ptr<NativeOp> make_qdq_op(const Node& node, int64_t opset, const Graph& graph);          // int8_qdq.cpp

}  // namespace cpu
}  // namespace pyflame_rt
