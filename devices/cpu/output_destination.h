// OutputDestination: the caller's buffer (IOBinding with a pre-allocated output) that the step
// running on this thread should write its output into, so the run needs no final copy.
//
// CpuProgram installs one for a step whose single output is a bound graph output; the op's
// allocation (CpuValue::allocate_native, plain_output_tensor) claims it when the output it is
// about to allocate has exactly the bound dtype and dims in the plain row-major layout. Any
// other allocation (a blocked layout, other dims, a second allocation in the same step) gets
// ordinary memory, and the program copies into the caller's buffer at the end instead.
//
//   OutputDestination::Scope dest(&target);                    // CpuProgram, around one step
//   Tensor y = plain_output_tensor(DType::kFloat32, out_dims);  // an op: the bound buffer if it fits
#pragma once

#include <memory>

#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

class OutputDestination {
 public:
  // The address of the bound buffer when one is installed on this thread, still unclaimed,
  // and of exactly `dtype` and `dims`; it is then claimed (later calls get nullptr).
  static void* claim(DType dtype, const Dims& dims);
  // True when a buffer is installed and unclaimed: ops that would write over an input they
  // read last (in place) write into the destination instead.
  static bool pending();

  class Scope {
   public:
    // `target` (a tensor wrapping the caller's buffer) may be null: no destination.
    explicit Scope(const Tensor* target);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    const Tensor* previous_;
    bool previous_claimed_;
  };
};

// A plain output tensor for an op that writes every element: the bound buffer when it fits
// (OutputDestination::claim), else pooled_tensor().
Tensor plain_output_tensor(DType dtype, const Dims& dims);
// A plain tensor whose every element the caller writes: during a run a buffer of the run's
// BufferPool (not zeroed), else a new tensor. Never the bound buffer: for values that are not
// the step's output (an input made plain).
Tensor pooled_tensor(DType dtype, const Dims& dims);

}  // namespace cpu
}  // namespace pyflame_rt
