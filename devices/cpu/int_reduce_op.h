// Reductions over int64 and int32 tensors (int_reduce_op.cpp): shape arithmetic of detection
// models (ReduceMin of [k, count] per class, ReduceProd of a shape). Float reductions are
// reduce_op's.
#pragma once

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

std::unique_ptr<NativeOp> make_int_reduce_op(const Node& node, int64_t opset, const Graph& graph);
void register_int_reduce_ops(NativeOpTable& t);

}  // namespace cpu
}  // namespace pyflame_rt
