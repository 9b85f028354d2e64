// Plain arithmetic with numpy broadcasting (arith_op.cpp), for the dtypes and shapes the
// oneDNN elementwise kernels (eltwise_op) do not take.
#pragma once

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

// Runs node (Add, Sub, Mul, Div, Max, Min or Sum) on plain values; the reference kernel for
// what it does not compute (other dtypes, mixed dtypes, shapes that do not broadcast).
Status plain_arith(const Node& node, int64_t opset, const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs);

std::unique_ptr<NativeOp> make_arith_op(const Node& node, int64_t opset, const Graph& graph);
void register_arith_ops(NativeOpTable& t);

}  // namespace cpu
}  // namespace pyflame_rt
