#include "net/client/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "net/infer_types.h"

namespace pyflame_rt::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

// One keep-alive connection with its own io_context: every operation is asynchronous so the
// stream's deadline applies, and run() waits for it on the calling thread.
class Connection {
 public:
  Connection(std::string host, int port) : host_(std::move(host)), port_(port) {}

  Expected<http::response<http::string_body>> round_trip(http::request<http::string_body>& req,
                                                         std::chrono::milliseconds timeout) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = open_;
      if (!open_) RETURN_IF_ERROR(connect(timeout));
      beast::error_code ec;
      http::response<http::string_body> res;
      stream_.expires_after(timeout);
      http::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
      run();
      if (!ec) {
        stream_.expires_after(timeout);
        http::async_read(stream_, buffer_, res, [&](beast::error_code e, size_t) { ec = e; });
        run();
      }
      if (!ec) {
        if (!res.keep_alive()) close();
        return res;
      }
      close();
      // A kept-alive connection the server closed while idle: one fresh try.
      if (!reused || ec == beast::error::timeout) {
        return make_status(ec == beast::error::timeout ? StatusCode::kDeadlineExceeded : StatusCode::kUnavailable,
                           "HTTP ", host_, ":", port_, ": ", ec.message());
      }
    }
    return make_status(StatusCode::kUnavailable, "HTTP ", host_, ":", port_, ": connection lost twice");
  }

 private:
  Status connect(std::chrono::milliseconds timeout) {
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
    if (ec) return make_status(StatusCode::kUnavailable, "HTTP: cannot resolve '", host_, "': ", ec.message());
    stream_.expires_after(timeout);
    stream_.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) {
      return make_status(StatusCode::kUnavailable, "HTTP: cannot connect to ", host_, ":", port_, ": ", ec.message());
    }
    stream_.socket().set_option(tcp::no_delay(true), ec);
    open_ = true;
    return Status::OK();
  }
  void run() {
    ioc_.restart();
    ioc_.run();
  }
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    buffer_.clear();
    open_ = false;
  }

  std::string host_;
  int port_;
  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
  bool open_ = false;
};

Expected<Tensor> tensor_from_json(const json& out, DType dtype, const Dims& dims, const std::string& what) {
  auto data = out.find("data");
  if (data == out.end()) return make_status(StatusCode::kFail, what, ": neither binary data nor \"data\"");
  json flat = json::array();
  // KServe allows nested arrays: flatten row-major.
  std::function<void(const json&)> walk = [&](const json& j) {
    if (j.is_array()) {
      for (const auto& e : j) walk(e);
    } else {
      flat.push_back(j);
    }
  };
  walk(*data);
  Tensor t(dtype, dims);
  if (static_cast<int64_t>(flat.size()) != t.numel()) {
    return make_status(StatusCode::kFail, what, ": ", flat.size(), " values for ", t.numel(), " elements");
  }
  bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < flat.size(); ++i) {
      if constexpr (std::is_same_v<T, std::string>) {
        p[i] = flat[i].get<std::string>();
      } else if constexpr (std::is_same_v<T, bool>) {
        p[i] = flat[i].get<bool>();
      } else if constexpr (std::is_arithmetic_v<T>) {
        p[i] = flat[i].get<T>();
      } else {
        p[i] = T(flat[i].get<float>());  // FP16 / BF16
      }
    }
  });
  if (!ok) return make_status(StatusCode::kFail, what, ": unsupported datatype");
  return t;
}

class HttpClient final : public InferenceClient {
 public:
  HttpClient(std::string host, int port, ClientOptions options)
      : host_(std::move(host)), port_(port), options_(std::move(options)) {}

  Expected<TensorMap> infer(const std::string& model, const TensorMap& feeds,
                            const std::vector<std::string>& outputs) override {
    std::string target = "/v2/models/" + model;
    if (!options_.model_version.empty()) target += "/versions/" + options_.model_version;
    target += "/infer";
    size_t json_size = 0;
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::content_type, "application/octet-stream");
    req.body() = encode_binary_infer_request(feeds, outputs, &json_size);
    req.set("Inference-Header-Content-Length", std::to_string(json_size));
    req.keep_alive(true);
    req.prepare_payload();
    ASSIGN_OR_RETURN(auto res, round_trip(req));
    if (res.result_int() != 200) return error_from(res);
    size_t header_len = res.body().size();
    auto it = res.find("Inference-Header-Content-Length");
    if (it != res.end()) header_len = std::stoul(std::string(it->value()));
    return decode_infer_response(res.body(), header_len);
  }

  std::future<Expected<TensorMap>> infer_async(const std::string& model, const TensorMap& feeds,
                                               const std::vector<std::string>& outputs) override {
    // HTTP/1.1 has one request per connection at a time: each call in flight takes its own
    // connection from the pool, on its own thread.
    return std::async(std::launch::async, [this, model, feeds, outputs] { return infer(model, feeds, outputs); });
  }

  Expected<bool> live() override { return get_ok("/v2/health/live"); }
  Expected<bool> ready() override { return get_ok("/v2/health/ready"); }

 private:
  Expected<bool> get_ok(const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host_);
    req.keep_alive(true);
    ASSIGN_OR_RETURN(auto res, round_trip(req));
    return res.result_int() == 200;
  }

  static Status error_from(const http::response<http::string_body>& res) {
    json body = json::parse(res.body(), nullptr, false);
    std::string message = body.is_object() && body.contains("error") && body["error"].is_string()
                              ? body["error"].get<std::string>()
                              : res.body();
    return Status(status_code_from_http(res.result_int()), "HTTP " + std::to_string(res.result_int()) + ": " + message);
  }

  Expected<http::response<http::string_body>> round_trip(http::request<http::string_body>& req) {
    std::unique_ptr<Connection> conn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!conn) conn = std::make_unique<Connection>(host_, port_);
    auto res = conn->round_trip(req, options_.timeout);
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(conn));
    return res;
  }

  std::string host_;
  int port_;
  ClientOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace

std::string encode_binary_infer_request(const TensorMap& feeds, const std::vector<std::string>& outputs,
                                        size_t* json_size) {
  json header = {{"inputs", json::array()}};
  std::string raw;
  for (const auto& [name, tensor] : feeds) {
    const size_t before = raw.size();
    append_tensor_bytes(tensor, &raw);
    header["inputs"].push_back({{"name", name},
                                {"datatype", kserve_datatype(tensor.dtype())},
                                {"shape", std::vector<int64_t>(tensor.dims().begin(), tensor.dims().end())},
                                {"parameters", {{"binary_data_size", raw.size() - before}}}});
  }
  if (outputs.empty()) {
    header["parameters"] = {{"binary_data_output", true}};
  } else {
    header["outputs"] = json::array();
    for (const auto& o : outputs) header["outputs"].push_back({{"name", o}, {"parameters", {{"binary_data", true}}}});
  }
  std::string body = header.dump();
  *json_size = body.size();
  body += raw;
  return body;
}

Expected<TensorMap> decode_infer_response(const std::string& body, size_t json_size) {
  if (json_size > body.size()) {
    return make_status(StatusCode::kFail, "HTTP answer: header length ", json_size, " > body ", body.size());
  }
  json header = json::parse(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(json_size), nullptr, false);
  if (!header.is_object() || !header.contains("outputs") || !header["outputs"].is_array()) {
    return make_status(StatusCode::kFail, "HTTP answer: not a KServe v2 inference response");
  }
  TensorMap out;
  size_t pos = json_size;
  for (const json& o : header["outputs"]) {
    const std::string name = o.value("name", "");
    const std::string what = "output '" + name + "'";
    ASSIGN_OR_RETURN(DType dtype, dtype_from_kserve(o.value("datatype", "")));
    ASSIGN_OR_RETURN(Dims dims, dims_from_request(o.value("shape", std::vector<int64_t>{}), what));
    const json* params = o.contains("parameters") ? &o["parameters"] : nullptr;
    if (params && params->contains("binary_data_size")) {
      const size_t size = (*params)["binary_data_size"].get<size_t>();
      if (pos + size > body.size()) {
        return make_status(StatusCode::kFail, what, ": ", size, " bytes announced, ", body.size() - pos, " left");
      }
      ASSIGN_OR_RETURN(out[name], tensor_from_bytes(dtype, dims, body.data() + pos, size, what));
      pos += size;
    } else {
      ASSIGN_OR_RETURN(out[name], tensor_from_json(o, dtype, dims, what));
    }
  }
  return out;
}

Expected<std::unique_ptr<InferenceClient>> make_http_client(const std::string& host, int port, ClientOptions options) {
  return std::unique_ptr<InferenceClient>(new HttpClient(host, port, std::move(options)));
}

}  // namespace pyflame_rt::net
