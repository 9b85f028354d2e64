// InferenceClient: the C++ client of a KServe v2 server (ours, or Triton), over HTTP or gRPC.
//
//   auto client = InferenceClient::create("grpc://127.0.0.1:8001");   // or "http://127.0.0.1:8000"
//   if (!client.ok()) { ... }
//   auto out = (*client)->infer("tiny_cnn", {{"image", x}});          // Expected<TensorMap>
//   auto fut = (*client)->infer_async("tiny_cnn", {{"image", x}});    // std::future<Expected<TensorMap>>
//   auto all = (*client)->infer_batch("tiny_cnn", {feed_a, feed_b}); // in flight together
//
// HTTP sends the binary tensor extension (a JSON header, then raw little-endian bytes; Boost.Beast
// over keep-alive connections, one per concurrent call); gRPC sends raw_input_contents with the
// stubs generated from net/proto/grpc_service.proto. Server errors come back as a Status whose
// code follows the HTTP/gRPC status (400/INVALID_ARGUMENT -> kInvalidArgument, 404/NOT_FOUND ->
// kNotFound, 503/RESOURCE_EXHAUSTED -> kResourceExhausted/kUnavailable, ...), with the server's
// message. A client is safe to use from several threads.
#pragma once

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/status.h"
#include "graph/tensor.h"

namespace pyflame_rt::net {

using TensorMap = std::map<std::string, Tensor>;

struct ClientOptions {
  std::chrono::milliseconds timeout{30000};  // per request
  std::string model_version;                 // empty: the server's newest
};

class InferenceClient {
 public:
  // "http://HOST:PORT" or "grpc://HOST:PORT" (default ports 8000 and 8001).
  static Expected<std::unique_ptr<InferenceClient>> create(const std::string& url, ClientOptions options = {});
  virtual ~InferenceClient() = default;

  // `outputs` empty: every output. Returns output name -> tensor.
  virtual Expected<TensorMap> infer(const std::string& model, const TensorMap& feeds,
                                    const std::vector<std::string>& outputs = {}) = 0;
  virtual std::future<Expected<TensorMap>> infer_async(const std::string& model, const TensorMap& feeds,
                                                       const std::vector<std::string>& outputs = {}) = 0;
  // Every feed sent before any answer is awaited (the server batches them); results in order.
  std::vector<Expected<TensorMap>> infer_batch(const std::string& model, const std::vector<TensorMap>& feeds,
                                               const std::vector<std::string>& outputs = {});
  virtual Expected<bool> live() = 0;
  virtual Expected<bool> ready() = 0;
};

// The client-side inverse of the server's status table: an HTTP status / gRPC code to a StatusCode.
StatusCode status_code_from_http(int http_status);
StatusCode status_code_from_grpc(int grpc_code);

}  // namespace pyflame_rt::net
