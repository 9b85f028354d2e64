// The native .pfm model format: our own versioned protobuf schema (graph/pfm.proto) holding a
// whole Graph, weights included. Save and load round-trip any imported graph exactly.
//
//   RETURN_IF_ERROR(save_pfm(graph, "model.pfm"));
//   ASSIGN_OR_RETURN(Graph g, load_pfm_file("model.pfm"));
#pragma once

#include <string>

#include "graph/graph.h"

namespace pyflame_rt {

constexpr int kPfmFormatVersion = 1;

// True when `bytes` starts with the .pfm magic (so loaders can tell .pfm from ONNX).
bool is_pfm_bytes(const std::string& bytes);

Status save_pfm(const Graph& graph, const std::string& path);  // atomic: temp file + rename
Expected<std::string> serialize_pfm(const Graph& graph);
Expected<Graph> load_pfm_file(const std::string& path);
Expected<Graph> load_pfm_bytes(const std::string& bytes);

}  // namespace pyflame_rt
