// Graph -> ONNX: writes our IR (e.g. an optimised graph, SessionOptions.optimized_model_path
// ending in ".onnx") as an ONNX model that onnx.load and this runtime read back. Ops this
// runtime added (fused ops) keep their domain, which is declared as an opset import.
//
//   RETURN_IF_ERROR(save_onnx(graph, "model.opt.onnx", metadata));
#pragma once

#include <string>

#include "graph/graph.h"
#include "graph/model_metadata.h"

namespace pyflame_rt {

// The serialised ModelProto (IR version 8, producer "pyflame_rt").
Expected<std::string> export_onnx_bytes(const Graph& graph, const ModelMetadata& metadata = {});
// Written atomically (temp file + rename); kFail when the file cannot be written.
Status save_onnx(const Graph& graph, const std::string& path, const ModelMetadata& metadata = {});

}  // namespace pyflame_rt
