// libFuzzer target: the ZeroMQ frame decoder (net/zmq/zmq_wire.h) on a multipart message.
// The bytes are cut into frames: each frame is a 2-byte little-endian length and that many
// bytes; what is left after the last complete one is the last frame.
#include <cstdint>
#include <vector>

#include "net/zmq/zmq_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pyflame_rt::net;
  std::vector<FrameView> frames;
  const char* p = reinterpret_cast<const char*>(data);
  size_t pos = 0;
  while (size - pos >= 2) {
    size_t n = static_cast<size_t>(data[pos]) | static_cast<size_t>(data[pos + 1]) << 8;
    pos += 2;
    if (n > size - pos) break;
    frames.push_back({p + pos, n});
    pos += n;
  }
  if (pos < size) frames.push_back({p + pos, size - pos});
  ZmqErrorContext context;
  auto parsed = parse_zmq_request(frames, &context);
  if (parsed.ok()) {
    InferResponse response;
    for (auto& in : parsed->request.inputs) response.outputs.push_back({in.name, in.tensor, {}});
    (void)encode_zmq_response(response, parsed->stream, parsed->seq, 1);
  } else {
    (void)encode_zmq_error(context, parsed.status());
  }
  return 0;
}
