// Elementwise float ops on small tensors in the plain layout, by our own loops instead of a
// oneDNN primitive. A primitive's execution has a fixed cost whatever its size (a memory
// object per operand, an argument map, oneDNN's execution context), which a small model of many
// tiny nodes pays on every node: a chain of 120 Add and Tanh nodes on [1, 64] took 219 us (1.8 us a node)
// (minimum per run) against ONNX Runtime's 48 us, and 68 us on these loops (with the program's
// per-step vectors kept). From 16K elements oneDNN's jit kernels are faster than ours
// (docs/performance.md, "Small elementwise nodes"), hence kSmallEltwiseElements.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devices/cpu/dnnl_util.h"

namespace pyflame_rt {
namespace cpu {

// Up to this many output elements an elementwise node runs on these loops (4,096 tied with
// oneDNN in the measurement above, 16,384 lost by 30%).
constexpr int64_t kSmallEltwiseElements = 4096;

// The f32 elements of `v` when they lie in the plain row-major layout (a plain tensor, or native
// memory laid out plain), read in place; nullptr otherwise (another layout or dtype, absent).
const float* plain_f32_data(const CpuValue* v);

// The activations small_activation computes, named once when an op is made: comparing the
// name on every call was 2% of a chain of tiny nodes.
enum class SmallActivation { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kHardSwish, kHardSigmoid, kClip, kSqrt, kAbs, kNeg };

// The ONNX activation `name`, or kNone when small_activation does not compute it.
SmallActivation small_activation_of(const std::string& name);
// y[i] = act(x[i]) for i < n, with `params` as ActivationOp holds them (LeakyRelu: alpha;
// HardSigmoid: alpha, beta; Clip: min, max). x and y may be the same array. `act` is not kNone.
void small_activation(SmallActivation act, const std::vector<float>& params, const float* x, float* y, int64_t n);

// y = a (op) b for Add, Sub, Mul, Div (`alg` oneDNN's binary algorithm), where b is either a's
// size (`b_len` == n), one value (1), or a row of a's last `b_len` elements repeated (a bias
// [C] on [T, C]: n a multiple of b_len).
void small_binary(dnnl::algorithm alg, const float* a, const float* b, int64_t b_len, float* y, int64_t n);

// How many nodes these loops computed in this process (tests tell them from oneDNN's).
uint64_t small_eltwise_runs();

}  // namespace cpu
}  // namespace pyflame_rt
