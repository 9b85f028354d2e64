// libFuzzer target: the ONNX importer on arbitrary bytes (protobuf parse, shape inference,
// conversion, external data lookups confined to an empty folder).
#include <cstdint>
#include <string>

#include "graph/onnx_import.h"
#include "fuzz/quiet_protobuf.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet_protobuf_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto g = pyflame_rt::import_onnx_bytes(bytes, "/nonexistent-pfrt-fuzz-dir");
  (void)g;
  return 0;
}
