#include "net/http/http_routes.h"

#include <charconv>

namespace pyflame_rt::net::http {

std::vector<std::string> split_target(std::string_view target) {
  std::vector<std::string> parts;
  std::string_view path = target.substr(0, target.find('?'));
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

std::string model_of_target(std::string_view target) {
  std::vector<std::string> p = split_target(target);
  return p.size() >= 3 && p[0] == "v2" && p[1] == "models" ? p[2] : "";
}

RouteMatch route_request(bool get, bool post, std::string_view target) {
  const std::vector<std::string> p = split_target(target);
  auto only = [](bool allowed, HttpRoute route) {
    return RouteMatch{allowed ? route : HttpRoute::kMethodNotAllowed, "", ""};
  };
  if (p.size() == 1 && p[0] == "metrics") return only(get, HttpRoute::kMetrics);
  if (p.empty() || p[0] != "v2") return {};
  if (p.size() == 1) return only(get, HttpRoute::kServerMetadata);
  if (p.size() == 3 && p[1] == "health" && (p[2] == "live" || p[2] == "ready")) {
    return only(get, p[2] == "live" ? HttpRoute::kHealthLive : HttpRoute::kHealthReady);
  }
  if (p[1] == "repository") {
    if (!post) return only(false, HttpRoute::kNotFound);
    if (p.size() == 3 && p[2] == "index") return {HttpRoute::kRepositoryIndex, "", ""};
    if (p.size() == 5 && p[2] == "models" && (p[4] == "load" || p[4] == "unload")) {
      return {p[4] == "load" ? HttpRoute::kRepositoryLoad : HttpRoute::kRepositoryUnload, p[3], ""};
    }
    return {};
  }
  if (p[1] != "models" || p.size() < 3) return {};
  // /v2/models/{m}[/versions/{v}][/ready|/infer]
  RouteMatch m;
  m.model = p[2];
  size_t next = 3;
  if (p.size() >= 5 && p[3] == "versions") {
    m.version = p[4];
    next = 5;
  }
  if (p.size() > next + 1) return {};
  const std::string action = p.size() > next ? p[next] : "";
  if (action.empty()) m.route = get ? HttpRoute::kModelMetadata : HttpRoute::kMethodNotAllowed;
  else if (action == "ready") m.route = get ? HttpRoute::kModelReady : HttpRoute::kMethodNotAllowed;
  else if (action == "infer") m.route = post ? HttpRoute::kInfer : HttpRoute::kMethodNotAllowed;
  else return {};
  return m;
}

Expected<std::optional<size_t>> json_length_header(const std::optional<std::string_view>& value) {
  if (!value) return std::optional<size_t>();
  const std::string_view v = *value;
  unsigned long long n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
    return invalid_argument("Inference-Header-Content-Length '", std::string(v), "' is not a number");
  }
  return std::optional<size_t>(static_cast<size_t>(n));
}

}  // namespace pyflame_rt::net::http
