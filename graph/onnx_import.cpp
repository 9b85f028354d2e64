#include "graph/onnx_import.h"

namespace pyflame_rt {

Expected<Graph> import_onnx_file(const std::string&) { return not_implemented("onnx import"); }
Expected<Graph> import_onnx_bytes(const std::string&, const std::string&) {
  return not_implemented("onnx import");
}

}  // namespace pyflame_rt
