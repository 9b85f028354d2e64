// ONNX import: an ONNX ModelProto (opsets 7..17) -> our Graph, with ONNX shape inference
// filling in the types of intermediate values, and external tensor data read from files
// next to the model.
//
//   ASSIGN_OR_RETURN(Graph g, import_onnx_file("model.onnx"));
#pragma once

#include <string>

#include "graph/graph.h"
#include "graph/model_metadata.h"

namespace pyflame_rt {

constexpr int64_t kMinOnnxOpset = 7;
constexpr int64_t kMaxOnnxOpset = 17;

// Errors: kNoSuchFile (unreadable path), kInvalidProtobuf (not an ONNX model / truncated),
// kInvalidGraph (cycles, dangling names, bad attributes), kNotImplemented (unsupported opset or
// element type). Messages name the file, node, op and opset involved.
// `metadata`, when given, receives the model's metadata (producer, doc strings, metadata_props).
Expected<Graph> import_onnx_file(const std::string& path, ModelMetadata* metadata = nullptr);
// `base_dir` is where external data files are looked up (empty: current directory).
Expected<Graph> import_onnx_bytes(const std::string& bytes, const std::string& base_dir = "",
                                  ModelMetadata* metadata = nullptr);

// Runs ONNX shape inference (with data propagation) again over `graph` as the passes left it
// and records every value whose shape it now knows better than graph.value_info does. After
// constant folding has turned shape arithmetic into constants (a Reshape's target, a Slice's
// ends), values ONNX could not type at import become typed, so more Shape nodes fold. Large
// initializers are declared as typed inputs, not copied. Returns how many values improved.
Expected<int> refine_shapes_with_onnx(Graph& graph);

}  // namespace pyflame_rt
