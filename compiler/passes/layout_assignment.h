// Layout optimisation: chooses, once per graph, the channel layout of every region of 4-D
// activations that flows between layout-agnostic ops (convolutions, pooling, BatchNorm,
// activations, elementwise arithmetic, Concat along channels). A region holding a convolution with at least 8 input
// or output channels is "blocked" (the device's channel-blocked layout, e.g. nChw8c on AVX2:
// what its fast convolution kernels read and write); any other region is "plain" (NCHW).
//
// The decision is written on each convolution of the region as two string attributes the
// CPU device honours when it builds the primitive:
//   pyflame_rt_dst_layout  "blocked" | "plain"   its output's layout;
//   pyflame_rt_src_layout  "blocked" | "plain"   only when its input comes from the same
//                          region (a graph input or a value from outside keeps the kernel's
//                          choice: the first convolution reads the user's NCHW tensor as is).
// Every value inside a region then has one layout, so no conversion happens inside a region;
// conversions are left at its edges, where a layout-bound consumer (Reshape, MatMul, a
// reference kernel) reads a value once, lazily. Without the pass the device lets each
// primitive choose ("any"), which on EfficientNet-B0 put 33 reorders per run between the
// blocked squeeze-excite tensors and the plain layout oneDNN picks for 1x1-spatial convs.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class LayoutAssignment : public Pass {
 public:
  const char* name() const override { return "layout_assignment"; }
  const char* summary() const override { return "one channel layout (blocked or plain) per region of 4-D activations"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
