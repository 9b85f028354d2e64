// Native RoiAlign (roi_align_op.cpp): Faster R-CNN's box pooling.
#pragma once

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

std::unique_ptr<NativeOp> make_roi_align_op(const Node& node, int64_t opset, const Graph& graph);
void register_roi_align_ops(NativeOpTable& t);

}  // namespace cpu
}  // namespace pyflame_rt
