// libFuzzer target: the CLI's .npy reader on arbitrary bytes.
#include <cstdint>
#include <string>

#include "tools/npy_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)pyflame_rt::read_npy_bytes(bytes, "fuzz.npy");
  return 0;
}
