// Loads a model of any supported format (ONNX or .pfm), told apart by content, not name.
#pragma once

#include <string>

#include "graph/graph.h"
#include "graph/model_metadata.h"

namespace pyflame_rt {

// `metadata`, when given, receives what the model says about itself (.pfm files keep only
// the graph's name and "pyflame_rt" as producer).
Expected<Graph> load_model_file(const std::string& path, ModelMetadata* metadata = nullptr);
Expected<Graph> load_model_bytes(const std::string& bytes, const std::string& base_dir = "",
                                 ModelMetadata* metadata = nullptr);

}  // namespace pyflame_rt
