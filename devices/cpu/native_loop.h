// A Loop node on the CPU device with its body compiled like any other graph (native kernels,
// nested control flow split again), instead of the reference interpreter running the body node
// by node on reference kernels. Mask R-CNN pastes each mask into the image in a Loop (Gather,
// Resize, Slice, Concat, ...) and Keypoint R-CNN turns each heatmap into keypoints in one
// (Resize cubic, ArgMax, ...): on the interpreter every one of those nodes ran on reference
// kernels, once per detection.
//
// The body becomes a graph of its own whose inputs are the body's inputs (iteration number,
// condition, loop-carried values) followed by the outer-scope values it reads (the Loop's piece
// passes them); Constant nodes become initializers and Identity nodes other names, as in the
// If's branches (native_if.h). The loop itself follows ONNX: the trip count M and the condition
// are both optional, the body's condition output ends the loop, loop-carried values pass from
// one iteration to the next (any Value: tensors, sequences, optionals), scan outputs are
// stacked along a new first axis. The run's terminate flag and deadline are checked before
// every iteration, as the reference Loop does.
#pragma once

#include "devices/cpu/control_flow_split.h"

namespace pyflame_rt {
namespace cpu {

// `piece`: a graph whose only node is a Loop, its inputs the values the node and its body read
// (as control_flow_split cuts it). `compile_body` compiles the body graph (which may hold
// control flow itself). An error when the piece is not that shape or the body does not compile;
// the caller then runs the piece on the interpreter.
Expected<std::unique_ptr<Executable>> compile_native_loop(const Graph& piece, const PieceCompiler& compile_body);

}  // namespace cpu
}  // namespace pyflame_rt
