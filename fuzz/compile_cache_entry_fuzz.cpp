// libFuzzer target: a compile-cache entry as read from disk (header, key, checksum, .pfm).
#include <cstdint>
#include <string>

#include "compiler/compile_cache.h"
#include "fuzz/quiet_protobuf.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet_protobuf_logging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)pyflame_rt::decode_cache_entry("00112233aabbccdd", bytes, "fuzz");
  // Entries with a valid header and checksum reach the .pfm loader.
  if (size > 0) (void)pyflame_rt::decode_cache_entry("00112233aabbccdd", pyflame_rt::encode_cache_entry("00112233aabbccdd", bytes), "fuzz");
  return 0;
}
