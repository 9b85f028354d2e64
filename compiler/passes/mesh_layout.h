// The wafer's layout pass: runs placement (devices/wse/placement.h) on the partition placed on
// the wafer and writes, on every node, how it is tiled over the PEs, so that printed graphs
// (pyflame-rt inspect) and later passes see the decision the cost model made:
//   pyflame_rt_wse_kind   "gemm" | "conv" | "elementwise" | ...
//   pyflame_rt_wse_split  [m_parts, k_parts, n_parts, grid_w, grid_h]: K (the reduction) over
//                         k_parts columns, N (outputs) over n_parts rows, M over m replicas;
//   pyflame_rt_wse_rect   [x, y, w, h, system] of its partition's rectangle.
// The device places the partition again when it compiles it (same inputs, same answer), so
// the attributes are a record, never an input. Graphs whose shapes are not all known are
// left unchanged (placement then happens at the first run).
#pragma once

#include "compiler/pass.h"
#include "devices/wse/wse_spec.h"

namespace pyflame_rt {

class MeshLayout : public Pass {
 public:
  MeshLayout();  // the newest generation's full fabric
  explicit MeshLayout(WseSpec spec) : spec_(std::move(spec)) {}
  const char* name() const override { return "wse_mesh_layout"; }
  const char* summary() const override { return "tiles every wafer node over its PE rectangle by the cost model"; }
  Status run(Graph& graph, bool& changed) override;

 private:
  WseSpec spec_;
};

}  // namespace pyflame_rt
