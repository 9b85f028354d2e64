// Native ScatterElements (scatter_elements_op.cpp): Faster R-CNN's per-level box pooling
// scatters each level's RoiAlign output into one tensor.
#pragma once

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

std::unique_ptr<NativeOp> make_scatter_elements_op(const Node& node, int64_t opset, const Graph& graph);
void register_scatter_elements_ops(NativeOpTable& t);

}  // namespace cpu
}  // namespace pyflame_rt
