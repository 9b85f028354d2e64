// The KServe v2 REST routes: what a method and target name, and the infer body's framing
// header. Pure functions without sockets, so the server (http_server.cpp) and the HTTP fuzz
// target (fuzz/http_request_fuzz.cpp) run the same code on a request.
//
//   RouteMatch m = route_request(/*get=*/false, /*post=*/true, "/v2/models/cnn/versions/2/infer");
//   // m.route == HttpRoute::kInfer, m.model == "cnn", m.version == "2"
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/status.h"

namespace pyflame_rt::net::http {

enum class HttpRoute {
  kMetrics,            // GET /metrics
  kServerMetadata,     // GET /v2
  kHealthLive,         // GET /v2/health/live
  kHealthReady,        // GET /v2/health/ready
  kRepositoryIndex,    // POST /v2/repository/index
  kRepositoryLoad,     // POST /v2/repository/models/{m}/load
  kRepositoryUnload,   // POST /v2/repository/models/{m}/unload
  kModelMetadata,      // GET /v2/models/{m}[/versions/{v}]
  kModelReady,         // GET .../ready
  kInfer,              // POST .../infer
  kNotFound,
  kMethodNotAllowed,
};

struct RouteMatch {
  HttpRoute route = HttpRoute::kNotFound;
  std::string model, version;
};

// `get`/`post`: the request's method is GET / POST (any other is neither).
RouteMatch route_request(bool get, bool post, std::string_view target);

// The non-empty path segments of a target, before any '?'.
std::vector<std::string> split_target(std::string_view target);

// The model a /v2/models/{m}/... target names ("" for none), for counting a failure against it.
std::string model_of_target(std::string_view target);

// Inference-Header-Content-Length (the JSON part's length when binary tensors follow):
// nullopt when the header is absent, InvalidArgument when it is not a decimal number.
Expected<std::optional<size_t>> json_length_header(const std::optional<std::string_view>& value);

}  // namespace pyflame_rt::net::http
