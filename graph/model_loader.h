// Loads a model of any supported format (ONNX or .pfm), told apart by content, not name.
#pragma once

#include <string>

#include "graph/graph.h"

namespace pyflame_rt {

Expected<Graph> load_model_file(const std::string& path);
Expected<Graph> load_model_bytes(const std::string& bytes, const std::string& base_dir = "");

}  // namespace pyflame_rt
