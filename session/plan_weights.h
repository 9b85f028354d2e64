// Which weights a plan file may leave out: those every reader of which runs on its packed blob
// (devices/packed_weights.h), so the file holds each such weight once, packed, instead of
// twice. For ResNet-50 that is every convolution's weights, half of a plan's bytes, and a hit
// reads and checks half as much.
//
//   RETURN_IF_ERROR(model.export_packed(&plan.packed));
//   leave_out_packed_weights(model, &plan);   // plan.weights -> plan.left_out
#pragma once

#include "session/compiled_model.h"
#include "session/plan_file.h"

namespace pyflame_rt {

// Moves from plan->weights to plan->left_out each weight that (1) is the weight input (input 1)
// of Conv, FusedConv, MatMul, Gemm or FusedMatMul readers only, (2) each of which has a blob in
// plan->packed for its partition, (3) in a partition whose shapes are all static (inputs
// fully known, no op that makes a shape from values: so no kernel ever builds a plan for
// another shape, which would need the raw weight), and (4) is no graph input or output. Weights that are stand-ins already (a session made from a plan saving it again)
// are left out too. Partitions with subgraphs keep all their weights. The session that loads
// the plan checks that each such reader took its blob (cpu/cpu_program.cpp).
// `stand_ins_only`: only the stand-ins (a plan file, which keeps every weight it has).
void leave_out_packed_weights(const CompiledModel& model, PlanContents* plan, bool stand_ins_only = false);

}  // namespace pyflame_rt
