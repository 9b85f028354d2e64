// An If node on the CPU device with both branches compiled like any other graph (native
// kernels, nested control flow split again), instead of the reference interpreter running
// the branch node by node. torchvision's detection models end in one If ("no boxes left?")
// whose else branch is the whole batched NMS: on the interpreter it was the slowest part of
// SSDLite and ran every one of its nodes on reference kernels.
//
// Each branch becomes a graph of its own: its outer-scope reads (its nested subgraphs' too)
// are its inputs (the If's piece passes them), its Constant nodes become initializers, its
// Identity nodes other names for their inputs, its outputs the If's outputs. A nested If is
// split out of the branch and compiled the same way.
#pragma once

#include "devices/cpu/control_flow_split.h"

namespace pyflame_rt {
namespace cpu {

// `piece`: a graph whose only node is an If, its inputs the condition and the values its branches
// read (as control_flow_split cuts it). `compile_branch` compiles a branch graph (which may
// hold control flow itself). An error when the piece is not that shape or a branch does not
// compile; the caller then runs the piece on the interpreter.
// The value of a Constant node in one of its common forms; false for the others (strings,
// sparse), which stay nodes. Shared with the Loop's body (native_loop.h).
bool constant_node_value(const Node& n, Tensor* out);

Expected<std::unique_ptr<Executable>> compile_native_if(const Graph& piece, const PieceCompiler& compile_branch);

}  // namespace cpu
}  // namespace pyflame_rt
