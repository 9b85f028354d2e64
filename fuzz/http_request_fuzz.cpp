// libFuzzer target: the HTTP request path of the KServe server without sockets. Boost.Beast's
// request parser (with the server's body limit) on the bytes, then our routing of the method
// and target (net/http/http_routes.h) and, for an infer route, the framing header and the
// KServe body decoder: everything the server does with a request before a model sees it.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

#include "net/http/http_routes.h"
#include "net/http/kserve_json.h"

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

static std::string_view sv(beast::string_view s) { return std::string_view(s.data(), s.size()); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pyflame_rt::net::http;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(1u << 20);
  parser.eager(true);
  beast::error_code ec;
  boost::asio::const_buffer in(data, size);
  // Feed what the parser takes, as a socket's reads would; stop at an error or no progress.
  while (in.size() > 0 && !parser.is_done()) {
    size_t used = parser.put(in, ec);
    if (ec == bhttp::error::need_more) ec = {};
    if (ec || used == 0) break;
    in += used;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  (void)model_of_target(sv(parser.get().target()));
  if (ec || !parser.is_done()) return 0;
  const auto& req = parser.get();
  RouteMatch m = route_request(req.method() == bhttp::verb::get, req.method() == bhttp::verb::post, sv(req.target()));
  if (m.route != HttpRoute::kInfer) return 0;
  auto header = req.find("Inference-Header-Content-Length");
  auto json_length =
      json_length_header(header == req.end() ? std::nullopt : std::optional<std::string_view>(sv(header->value())));
  if (!json_length.ok()) return 0;
  (void)parse_infer_request(req.body(), *json_length, m.model, m.version);
  return 0;
}
