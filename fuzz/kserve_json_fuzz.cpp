// libFuzzer target: the KServe v2 REST body decoder (JSON header, optional binary tensor
// section). An odd first byte means an Inference-Header-Content-Length is sent: the next two
// bytes (little-endian) are its value; the rest is the body.
#include <cstdint>
#include <optional>
#include <string_view>

#include "net/http/kserve_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pyflame_rt::net::http;
  if (size < 1) return 0;
  size_t skip = 1;
  std::optional<size_t> json_length;
  if (data[0] & 1) {
    if (size < 3) return 0;
    json_length = static_cast<size_t>(data[1]) | static_cast<size_t>(data[2]) << 8;
    skip = 3;
  }
  std::string_view body(reinterpret_cast<const char*>(data) + skip, size - skip);
  auto parsed = parse_infer_request(body, json_length, "model", "");
  if (parsed.ok()) {
    // What the server answers with: the decoded tensors encoded back (JSON and binary).
    pyflame_rt::net::InferResponse response;
    for (auto& in : parsed->request.inputs) response.outputs.push_back({in.name, in.tensor, {}});
    (void)encode_infer_response(response, parsed->binary);
  }
  return 0;
}
