// Which graph nodes the wafer runs and how each is seen by placement: its MeshOpKind, GEMM
// view, tensors and parameters (a MeshOp without split, rectangle or cycles yet).
//
//   ShapeMap shapes = known_shapes(graph);
//   std::string why = wse_why_not(graph, node);      // "" when the wafer takes the node
//   ASSIGN_OR_RETURN(MeshOp op, describe_op(graph, node, shapes));
#pragma once

#include <map>
#include <string>

#include "devices/device.h"
#include "devices/wse/mesh_plan.h"

namespace pyflame_rt {

using ShapeMap = std::map<std::string, Dims>;

// Concrete dims of every value whose shape the graph knows fully (inputs, outputs,
// initializers, inferred intermediates).
ShapeMap known_shapes(const Graph& graph);

// The ops the wafer lowers (for DeviceCapabilities and listings).
const std::vector<OpSupport>& wse_supported_ops();

// "" when the wafer takes `node`, else why not: an op it does not lower, a tensor that is not
// float32 (integer initializers such as Reshape's shape are parameters and allowed), a shape
// the lowering does not cover (3-D convolution, a MatMul whose B is batched).
std::string wse_why_not(const Graph& graph, const Node& node);

// The node as placement sees it. Errors name the node when a shape it needs is unknown.
Expected<MeshOp> describe_op(const Graph& graph, const Node& node, const ShapeMap& shapes);

// Ops with weights worth a rectangle of their own (GEMM, conv, attention, recurrent); the
// others join the partition of the op before them.
bool is_anchor_kind(MeshOpKind kind);

}  // namespace pyflame_rt
