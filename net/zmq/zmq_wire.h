// The ZeroMQ wire format (docs/serving_grpc_zmq.md): multipart messages of a JSON header and
// one raw frame per tensor.
//
//   in  (PULL, or SUB after a topic frame = model name):
//       [ {"model", "stream"?, "seq", "inputs": [{"name","datatype","shape"}], "outputs"?: [names],
//          "start"?, "end"?, "id"?},  raw input 0, raw input 1, ... ]
//   out (PUB): [ topic = stream id or model name,
//                {"model","stream","seq","outputs": [{"name","datatype","shape"}], "gap"?},  raw output 0, ... ]
//   err (PUB): [ "error", {"model","stream","seq","error","code"} ]
//
// Raw frames are little-endian row-major bytes of exactly the header's shape (BYTES: per
// element a 4-byte little-endian length, then the bytes), as in KServe's binary extension.
// Parsing never throws: a malformed message is a Status naming the frame and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/infer_types.h"

namespace pyflame_rt::net {

// One frame's bytes, borrowed from the received message.
struct FrameView {
  const char* data = nullptr;
  size_t size = 0;
};

struct ZmqRequest {
  InferRequest request;  // model, inputs, requested outputs; sequence set when "stream" is
  std::string stream;    // empty: a stateless request
  int64_t seq = 0;
};

// What a malformed header still told us, so the error message can name it.
struct ZmqErrorContext {
  std::string model;
  std::string stream;
  int64_t seq = -1;
};

Expected<ZmqRequest> parse_zmq_request(const std::vector<FrameView>& frames, ZmqErrorContext* context);

// The frames of an answer: topic, header, one raw frame per output. `gap` > 0 reports
// frames of this stream that never arrived before this one.
std::vector<std::string> encode_zmq_response(const InferResponse& response, const std::string& stream, int64_t seq,
                                             int64_t gap = 0);
// The frames of an error: "error", header. `code` overrides the code derived from the status.
std::vector<std::string> encode_zmq_error(const ZmqErrorContext& context, const Status& status,
                                          const char* code = nullptr);
// gRPC's canonical name of a status (INVALID_ARGUMENT, NOT_FOUND, ...): the "code" of an error.
const char* zmq_error_code(const Status& status);

}  // namespace pyflame_rt::net
