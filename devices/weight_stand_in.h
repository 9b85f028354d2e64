// Stand-ins for weights a plan file leaves out (session/plan_file.h): a tensor of the weight's
// dtype and dims over zero pages that cost neither a read nor memory (an anonymous mapping,
// MAP_NORESERVE, never touched). Kernels that run on the weight's packed blob
// (devices/packed_weights.h) only look at its dtype and dims; the CPU device refuses to
// compile a partition in which a reader of a stand-in did not take its blob
// (cpu/cpu_program.cpp), so the zeros never reach a result.
//
//   ASSIGN_OR_RETURN(Tensor w, weight_stand_in(DType::kFloat32, {64, 3, 7, 7}));
//   is_weight_stand_in(w);   // true, also for views of it
#pragma once

#include "graph/status.h"
#include "graph/tensor.h"

namespace pyflame_rt {

// kResourceExhausted when the address space cannot hold it.
Expected<Tensor> weight_stand_in(DType dtype, const Dims& dims);

// True when `t`'s bytes lie in a stand-in.
bool is_weight_stand_in(const Tensor& t);

}  // namespace pyflame_rt
