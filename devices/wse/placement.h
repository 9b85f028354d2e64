// Placement: a graph's wafer nodes -> a MeshPlan. Ops are grouped into partitions (an op with
// weights and the light ops after it), each partition is sized by the cost model to a rectangle
// whose every PE fits its weights, activations and buffers in SRAM (48 KB minus the code
// reserve), rectangles are packed without overlap, and the values between them get routes on
// the program's free colours. The strategy follows the model's size against the fabric:
//   small  ("replicated"): the whole pipeline several times side by side (batch parallelism);
//   medium ("hybrid"):     one pipeline, slow stages grown into data-parallel replicas;
//   large  ("pipelined"):  every stage at its smallest rectangle;
//   beyond one wafer ("multi_system"): stages continue on further systems (option "systems").
// A model that cannot fit is an error with the numbers.
//
//   ASSIGN_OR_RETURN(MeshPlan plan, plan_mesh(graph, spec));
#pragma once

#include "devices/wse/lowering.h"
#include "devices/wse/mesh_plan.h"
#include "devices/wse/wse_spec.h"

namespace pyflame_rt {

// Chooses `op`'s split on a w x h rectangle by the cost model (fewest cycles among the splits
// whose per-PE buffers fit in `budget_bytes`) and fills op.split, tensor tilings, buffers,
// sram_bytes_max and cycles. False when no split fits.
bool tile_op(const WseSpec& spec, MeshOp& op, int w, int h, int64_t budget_bytes);

// Cycles of `op` under its current split (the cost model per op kind).
OpCycles op_cycles(const WseSpec& spec, const MeshOp& op);

// Places every node of `graph` (all must be ones wse_why_not accepts).
Expected<MeshPlan> plan_mesh(const Graph& graph, const WseSpec& spec);

}  // namespace pyflame_rt
