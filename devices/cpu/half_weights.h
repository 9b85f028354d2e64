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
//   kernel or only an emulated one): fp32 kernels, whose packed (blocked, Winograd) weights
//   are kept in the weights' half type (HalfPacked) and expanded to f32 into one per-thread
//   scratch right before each primitive runs. The expansion is elementwise, so it is the same
//   for every oneDNN layout; it reads half the bytes from memory that f32 packed weights cost
//   and writes a buffer that stays in cache between layers. The weights take half the memory
//   here too, at the price of that conversion per run (docs/performance.md).
// The CPU's features are oneDNN's effective ISA, so ONEDNN_MAX_CPU_ISA=AVX2 caps our choice
// too (how tests and bench/quant_bench.py run the AVX2 path on an AVX-512 host).
#pragma once

#include <cstdint>
#include <memory>
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

// Elementwise conversions between f32 and `half` (float16 or bfloat16), rounding to nearest
// even as graph/half.h does. Vectorised by the CPU's features at run time (AVX-512, F16C +
// AVX2, else scalar); half_to_float splits large arrays across the calling thread's OpenMP
// team.
// half_to_float multiplies each result by `scale` (the inverse of a storage scale).
void float_to_half(const float* src, uint16_t* dst, int64_t n, DType half);
void half_to_float(const uint16_t* src, float* dst, int64_t n, DType half, float scale = 1.f);

// Transformed weights (Winograd's U = G g G^T) are no longer half values: rounding them to
// bf16 (8 significant bits) gave 4-5% of the output's peak as error through the output
// transform, fp16 (11 bits) 0.5%. They are stored fp16, multiplied by transformed_scale()
// (a power of two putting the peak at 2^13..2^14, so nothing overflows and small values stay
// normal), and expanded with its inverse.
float transformed_scale(const float* x, int64_t n);
void float_to_scaled_f16(const float* src, uint16_t* dst, int64_t n, float scale);

// Packed f32 weights (a primitive's weights memory, any oneDNN layout) held in half
// precision: made from f32 packed weights whose values came from half weights, so the
// round trip is exact (except transformed Winograd values, rounded once to the half type).
class HalfPacked {
 public:
  HalfPacked(const dnnl::memory& packed_f32, DType half);
  // The f32 weights over the calling thread's weights scratch, valid until the next expand()
  // on this thread: what the primitive reads in this run.
  dnnl::memory expand() const;
  // A separately allocated f32 copy (for exporting packed weights into a plan file).
  dnnl::memory expand_copy() const;
  const dnnl::memory::desc& desc() const { return desc_; }
  size_t half_bytes() const { return count_ * sizeof(uint16_t); }

 private:
  dnnl::memory::desc desc_;  // the f32 packed layout
  DType half_;               // the storage type (fp16 for oneDNN's Winograd layout)
  float scale_ = 1.f;        // storage = value * scale_ (transformed weights only)
  int64_t count_ = 0;        // floats in desc_ (padding included)
  std::shared_ptr<uint16_t> data_;
};

// A transient f32 array in its own page mapping, unmapped when destroyed: the f32 copies made
// while packing half weights (plain, then packed). From the heap, glibc kept those freed
// megabytes in the process (RSS of the half model as large as fp32's after the first run).
class MappedFloats {
 public:
  explicit MappedFloats(size_t count);
  ~MappedFloats();
  MappedFloats(const MappedFloats&) = delete;
  MappedFloats& operator=(const MappedFloats&) = delete;
  float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  size_t bytes_ = 0;
};

// Packs half `weights` (plain layout `plain_desc` of f32 dims/tags, values in weights' half
// type) for an f32 kernel wanting `packed_desc`: converted to f32 and reordered in transient
// mappings, then held half.
std::shared_ptr<const HalfPacked> pack_half_for_f32(const void* weights, DType half, const dnnl::memory::desc& plain_desc,
                                                    const dnnl::memory::desc& packed_desc);

// The calling thread's scratch for expanded weights (64-byte aligned, grown on demand, kept).
float* weights_scratch(size_t floats);

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
