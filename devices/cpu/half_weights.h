// Half-precision (float16/bfloat16) weights on the CPU device: which type the convolution and
// matmul kernels compute in, the Cast absorption that hands them the half initializers
// directly, and the report of what the weights cost in memory.
//
// The quantizer (python/pyflame_rt/quantization.py) stores weights as fp16/bf16 initializers
// behind a Cast to float; constant folding leaves those Casts in place
// (compiler/passes/constant_folding.cpp), and absorb_half_weights() removes them for the
// Conv/MatMul/Gemm nodes whose native op takes the half weights. Then:
// - bf16 weights on a CPU with native bf16 math (AVX-512 BF16, AMX): oneDNN's bf16
//   primitives (bf16 source and weights, f32 destination, f32 accumulation); the packed
//   weights are bf16, so the weights take half the memory;
// - otherwise (fp16 weights anywhere: oneDNN 2.6 has no f16 convolution or matmul on CPUs,
//   only f16<->f32 reorders; bf16 on AVX2 or AVX-512 without BF16, where oneDNN has no bf16
//   kernel or only an emulated one): fp32 kernels with the weights converted once into fp32
//   packed weights. The stored initializers stay half, the packed copy is fp32: memory is not
//   halved there, and weights_report_json() says so.
// The CPU's features are oneDNN's effective ISA, so ONEDNN_MAX_CPU_ISA=AVX2 caps our choice
// too (how tests and bench/quant_bench.py run the AVX2 path on an AVX-512 host).
#pragma once

#include <string>

#include "devices/cpu/dnnl_util.h"
#include "graph/graph.h"

namespace pyflame_rt {
namespace cpu {

bool is_half(DType t);                          // float16 or bfloat16
dnnl::memory::data_type dnnl_type(DType t);     // f32, f16, bf16 (f32 for anything else)

// True when oneDNN, at the ISA it runs with, has native bf16 math (avx512_core_bf16 or AMX).
bool native_bf16();

// The type a convolution or matmul with weights stored as `weights` computes in: bf16 for
// bf16 weights where native_bf16(), f32 otherwise.
dnnl::memory::data_type compute_type(DType weights);

// A float32 copy of a float16/bfloat16 tensor (the tensor itself when it is float32).
Tensor to_float(const Tensor& t);

// Rewires every Conv/MatMul/Gemm (and fused form) whose weights come from a Cast of a half
// initializer to read the initializer itself, when its native op accepts that (asked through
// make_native_op), and drops Casts left without readers. The rewired node reads a float input
// with half weights, something only the native ops and run_reference (reference_inputs())
// understand: call it on a graph the CPU program runs, after every graph pass.
void absorb_half_weights(Graph& graph);

// A Conv/MatMul/Gemm given half weights beside float activations (absorbed above) runs its
// reference kernel on float weights: the float copy of `weights`, made per call so that the
// weights stay half in memory. False (nothing to convert) for any other node or inputs.
bool float_weights_for_reference(const Node& node, const Value& activations, const Value& weights, Value* out);

// Counts a bf16 primitive that oneDNN could only build as a reference kernel (the op then
// computes in f32 instead), logged once per node.
void note_bf16_declined(const Node& node, const std::string& impl);

// {"initializer_bytes": ..., "initializer_bytes_by_dtype": {...}, "half_weight_nodes": ...,
//  "half_compute": {"bfloat16": "bf16"|"f32", "float16": "f32"}, "packed_weights_halved":
//  true|false, "note": "..."} for the graph the CPU program runs.
std::string weights_report_json(const Graph& graph);

}  // namespace cpu
}  // namespace pyflame_rt
