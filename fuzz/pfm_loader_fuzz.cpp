// libFuzzer target: the .pfm loader on arbitrary bytes (with and without the magic).
#include <cstdint>
#include <string>

#include "graph/pfm_format.h"
#include "fuzz/quiet_protobuf.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet_protobuf_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)pyflame_rt::load_pfm_bytes(bytes);
  // Most mutations lose the magic: also try them behind a valid one.
  if (!pyflame_rt::is_pfm_bytes(bytes)) (void)pyflame_rt::load_pfm_bytes("PYFLAMRT" + bytes);
  return 0;
}
