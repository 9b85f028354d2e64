#include "graph/model_loader.h"

#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "graph/onnx_import.h"
#include "graph/pfm_format.h"

namespace pyflame_rt {

namespace {
Expected<Graph> with_pfm_metadata(Expected<Graph> g, ModelMetadata* metadata) {
  if (g.ok() && metadata) {
    metadata->producer_name = "pyflame_rt";
    metadata->graph_name = g->name;
  }
  return g;
}
}  // namespace

Expected<Graph> load_model_file(const std::string& path, ModelMetadata* metadata) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return make_status(StatusCode::kNoSuchFile, "model file '", path, "' does not exist");
  }
  if (S_ISDIR(st.st_mode)) {
    return make_status(StatusCode::kNoSuchFile, "model path '", path, "' is a directory, expected a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_status(StatusCode::kNoSuchFile, "model file '", path, "' cannot be read");
  char magic[8] = {};
  in.read(magic, sizeof(magic));
  if (is_pfm_bytes(std::string(magic, static_cast<size_t>(in.gcount())))) {
    return with_pfm_metadata(load_pfm_file(path), metadata);
  }
  return import_onnx_file(path, metadata);
}

Expected<Graph> load_model_bytes(const std::string& bytes, const std::string& base_dir, ModelMetadata* metadata) {
  if (is_pfm_bytes(bytes)) return with_pfm_metadata(load_pfm_bytes(bytes), metadata);
  return import_onnx_bytes(bytes, base_dir, metadata);
}

}  // namespace pyflame_rt
