// libFuzzer target: what a stage server decodes from the network. The guard's BASP header
// check on the first 32 bytes, then CAF's binary deserializer into our wire types (a frame,
// as a served stage receives it) and from_wire() into tensors.
#include <caf/all.hpp>

#include <cstdint>
#include <string>

#include "actors/basp_guard.h"
#include "actors/remote_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pyflame_rt;
  if (size >= kBaspHeaderSize) {
    uint32_t len = 0;
    (void)check_basp_header(data, kBaspHeaderSize, 256u << 20, &len);
  }
  const char* bytes = reinterpret_cast<const char*>(data);
  {
    WireFrame frame;
    caf::binary_deserializer source(static_cast<caf::execution_unit*>(nullptr), bytes, size);
    if (!source(frame)) (void)from_wire(frame);
  }
  {
    WireReply reply;
    caf::binary_deserializer source(static_cast<caf::execution_unit*>(nullptr), bytes, size);
    if (!source(reply)) (void)from_wire(reply.changed);
  }
  return 0;
}
