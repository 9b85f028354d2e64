// One registration function per group of reference kernels (one source file each under
// devices/ref/kernels/). Explicit functions rather than static registrars: static libraries
// drop object files nobody references, silently losing their kernels.
#pragma once

#include "devices/ref/kernel.h"

namespace pyflame_rt {

void register_unary_kernels(KernelRegistry& r);        // kernels/unary.cpp
void register_binary_kernels(KernelRegistry& r);       // kernels/binary.cpp
void register_reduction_kernels(KernelRegistry& r);    // kernels/reduction.cpp
void register_tensor_kernels(KernelRegistry& r);       // kernels/tensor_ops.cpp (shape/layout)
void register_indexing_kernels(KernelRegistry& r);     // kernels/indexing.cpp (gather/scatter)
void register_nn_kernels(KernelRegistry& r);           // kernels/nn.cpp (conv, pool, norms)
void register_linalg_kernels(KernelRegistry& r);       // kernels/linalg.cpp (matmul, gemm, einsum)
void register_resize_kernels(KernelRegistry& r);       // kernels/resize.cpp
void register_rnn_kernels(KernelRegistry& r);          // kernels/rnn.cpp
void register_control_flow_kernels(KernelRegistry& r); // kernels/control_flow.cpp (If/Loop/Scan)
void register_sequence_kernels(KernelRegistry& r);     // kernels/sequence.cpp (+ Optional)
void register_quantization_kernels(KernelRegistry& r); // kernels/quantization.cpp
void register_quantization_fused_kernels(KernelRegistry& r); // kernels/quantization_fused.cpp (pyflame_rt.QLinearConvAdd, QMatMul)
void register_normalization_kernels(KernelRegistry& r); // kernels/normalization.cpp
void register_loss_kernels(KernelRegistry& r);          // kernels/loss.cpp
void register_signal_kernels(KernelRegistry& r);        // kernels/signal.cpp (DFT, STFT, windows)
void register_vision_kernels(KernelRegistry& r);        // kernels/vision.cpp (NMS, RoiAlign, GridSample, Unique)
void register_fused_kernels(KernelRegistry& r);         // kernels/fused.cpp (compiler-made fused ops)
void register_attention_kernels(KernelRegistry& r);     // kernels/attention.cpp (pyflame_rt.MultiHeadAttention)
void register_misc_kernels(KernelRegistry& r);          // kernels/misc.cpp (strings, random, training)
void register_ml_kernels(KernelRegistry& r);            // kernels/ml.cpp (ai.onnx.ml: ZipMap)

}  // namespace pyflame_rt
