// Replaces Shape and Size of values whose shape is fully known at compile time (from the
// model's input shapes and ONNX shape inference) by constants, so the shape arithmetic around
// them (Gather, Concat, Reshape targets) folds away too. While some Shape reads a value of
// unknown shape, each run first infers shapes again over the graph as earlier rounds of
// folding left it (Swin's window shifts: a Reshape whose target was computed becomes typed). The session checks every feed against
// the input shapes, so a static shape here cannot disagree with a run.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ShapeFolding : public Pass {
 public:
  const char* name() const override { return "shape_folding"; }
  const char* summary() const override { return "turn Shape/Size of statically shaped values into constants"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
