// ONNX type constraints on our IR: the check ONNX import makes on the ModelProto
// (graph/onnx_import.cpp) made on a Graph, for models that do not come through ONNX (.pfm
// files). A default-domain node's input of known type (a graph input or output, an
// initializer, a value_info entry, in this graph or an enclosing one) must be a type its ONNX
// schema allows at the graph's opset, and the inputs bound to one type parameter must agree.
//
//   RETURN_IF_ERROR(check_graph_type_constraints(graph, "model file 'm.pfm'"));
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/status.h"

namespace pyflame_rt {

// kInvalidGraph naming the node, opset, input, allowed and received types.
Status check_graph_type_constraints(const Graph& graph, const std::string& model_name);

// One default-domain node, given the type of each input as libonnx's interned name
// (onnx::Utils::DataTypeUtils::ToType: "tensor(float)", "seq(tensor(int64))"), nullptr where it
// is not known: the check both the Graph walk above and the ONNX importer's ModelProto walk make.
Status check_node_input_types(const std::string& model_name, const std::string& node_name, const std::string& op_type,
                              int version, const std::vector<std::string>& inputs,
                              const std::vector<const std::string*>& types);

}  // namespace pyflame_rt
