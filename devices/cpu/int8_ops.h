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

// True when the CPU oneDNN uses has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI,
// AMX). Without them oneDNN's u8s8 kernels saturate their 16-bit intermediate sums, so the
// int8 ops halve weights to 7 bits.
inline bool has_vnni() {
  auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx2_vnni || isa >= dnnl::cpu_isa::avx512_core_vnni;
}

}  // namespace cpu
}  // namespace pyflame_rt
