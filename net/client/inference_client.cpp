#include "net/client/inference_client.h"

#include "net/client/grpc_client.h"
#include "net/client/http_client.h"

namespace pyflame_rt::net {

Expected<std::unique_ptr<InferenceClient>> InferenceClient::create(const std::string& url, ClientOptions options) {
  auto scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "grpc") {
    return invalid_argument("InferenceClient: expected http://HOST:PORT or grpc://HOST:PORT, got '", url, "'");
  }
  std::string rest = url.substr(scheme_end + 3);
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  std::string host = rest;
  int port = scheme == "http" ? 8000 : 8001;
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    const std::string p = rest.substr(colon + 1);
    size_t used = 0;
    try {
      port = std::stoi(p, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != p.size() || port <= 0 || port > 65535) {
      return invalid_argument("InferenceClient: port '", p, "' in '", url, "' is not in 1..65535");
    }
  }
  if (host.empty()) return invalid_argument("InferenceClient: no host in '", url, "'");
  if (scheme == "http") return make_http_client(host, port, options);
  return make_grpc_client(host + ":" + std::to_string(port), options);
}

std::vector<Expected<TensorMap>> InferenceClient::infer_batch(const std::string& model,
                                                              const std::vector<TensorMap>& feeds,
                                                              const std::vector<std::string>& outputs) {
  std::vector<std::future<Expected<TensorMap>>> futures;
  futures.reserve(feeds.size());
  for (const auto& feed : feeds) futures.push_back(infer_async(model, feed, outputs));
  std::vector<Expected<TensorMap>> results;
  results.reserve(feeds.size());
  for (auto& f : futures) results.push_back(f.get());
  return results;
}

StatusCode status_code_from_http(int http_status) {
  switch (http_status) {
    case 400: return StatusCode::kInvalidArgument;
    case 404: return StatusCode::kNotFound;
    case 501: return StatusCode::kNotImplemented;
    case 503: return StatusCode::kUnavailable;
    case 504: return StatusCode::kDeadlineExceeded;
    default: return StatusCode::kFail;
  }
}

StatusCode status_code_from_grpc(int grpc_code) {
  switch (grpc_code) {
    case 3: return StatusCode::kInvalidArgument;    // INVALID_ARGUMENT
    case 4: return StatusCode::kDeadlineExceeded;   // DEADLINE_EXCEEDED
    case 5: return StatusCode::kNotFound;           // NOT_FOUND
    case 8: return StatusCode::kResourceExhausted;  // RESOURCE_EXHAUSTED
    case 12: return StatusCode::kNotImplemented;    // UNIMPLEMENTED
    case 14: return StatusCode::kUnavailable;       // UNAVAILABLE
    default: return StatusCode::kFail;
  }
}

}  // namespace pyflame_rt::net
