#include "net/http/http_server.h"

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "net/http/http_routes.h"
#include "net/http/kserve_json.h"

namespace pyflame_rt::net::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr const char* kJson = "application/json";

std::string_view sv(beast::string_view s) { return std::string_view(s.data(), s.size()); }

// Runs model loads and unloads one at a time, off the I/O threads (a load compiles a model).
class AdminWorker {
 public:
  AdminWorker() : thread_([this] { loop(); }) {}
  ~AdminWorker() { stop(); }
  void post(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) tasks_.push_back(std::move(task));
    cv_.notify_one();
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      cv_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopped_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopped and drained
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace

// Shared with the repository's callbacks, which may outlive the server: they post to the
// io_context only while the gate is open, and stop() closes it before the context goes away.
struct Gate {
  std::mutex mu;
  bool open = true;
};

namespace {
class Session;
}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<ModelRepository> repo;
  HttpOptions options;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  asio::io_context ioc;  // destroyed last of the asio objects: it owns pending handlers
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::optional<AdminWorker> admin;
  // Connections waiting for a model's answer (nothing else references them meanwhile).
  std::mutex waiting_mu;
  std::map<Session*, std::shared_ptr<Session>> waiting;
  std::atomic<bool> stopped{false};
  std::mutex stop_mu;
  int port = 0;

  void accept();
  void stop();
  void hold(const std::shared_ptr<Session>& s) {
    std::lock_guard<std::mutex> lock(waiting_mu);
    waiting[s.get()] = s;
  }
  void release(Session* s) {
    std::shared_ptr<Session> keep;  // destroyed outside the lock
    std::lock_guard<std::mutex> lock(waiting_mu);
    auto it = waiting.find(s);
    if (it == waiting.end()) return;
    keep = std::move(it->second);
    waiting.erase(it);
  }
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* core) : stream_(std::move(socket)), core_(core) {
    // Room for a small binary request in one read (a 32x32 RGB float image is 12 KB), instead
    // of growing from 512 bytes over several reads.
    buffer_.reserve(64 * 1024);
  }

  void run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  using Response = bhttp::response<bhttp::string_body>;

  void read() {
    parser_.emplace();
    parser_->body_limit(core_->options.max_body_bytes);
    stream_.expires_after(std::chrono::seconds(core_->options.idle_timeout_s));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  // The header alone: a declared body over the limit is refused before it is read, and a
  // client waiting for "100 Continue" (curl does, for large bodies) gets it.
  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    if (auto n = parser_->content_length(); n && *n > core_->options.max_body_bytes) {
      return on_read(bhttp::error::body_limit);
    }
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      auto go_on = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                         parser_->get().version());
      bhttp::async_write(stream_, *go_on, [self = shared_from_this(), go_on](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  // After a 413 the client may still be sending its body: read and drop it (bounded) before
  // closing, or the close resets the connection and the client never sees the answer.
  void drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > kMaxDrainBytes) return self->close();
      self->drain();
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return close();
    }
    keep_alive_ = false;  // an unreadable request leaves the stream in an unknown place
    version_ = 11;
    if (ec == bhttp::error::body_limit) {
      draining_ = true;
      std::string model = model_of_target(sv(parser_->get().target()));
      count_failure(model, "body_too_large");
      return send_error(bhttp::status::payload_too_large,
                        "request body exceeds the server's limit of " + std::to_string(core_->options.max_body_bytes) +
                            " bytes (max_body_bytes)");
    }
    if (ec) {
      core_->repo->metrics().record_server_failure("bad_http");
      return send_error(bhttp::status::bad_request, "malformed HTTP request: " + ec.message());
    }
    bhttp::request<bhttp::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    handle(std::move(req));
  }

  void count_failure(const std::string& model, const std::string& reason, const std::string& version = "") {
    auto found = model.empty() ? Expected<std::shared_ptr<ServedModel>>(Status(StatusCode::kNotFound, ""))
                               : core_->repo->find(model, version);
    if (found.ok()) (*found)->metrics().record_failure(reason);
    else core_->repo->metrics().record_server_failure(reason);
  }

  void handle(bhttp::request<bhttp::string_body> req) {
    ModelRepository& repo = *core_->repo;
    RouteMatch m = route_request(req.method() == bhttp::verb::get, req.method() == bhttp::verb::post, sv(req.target()));
    switch (m.route) {
      case HttpRoute::kMetrics:
        return send(bhttp::status::ok, repo.metrics().render(), "text/plain; version=0.0.4");
      case HttpRoute::kServerMetadata:
        return send(bhttp::status::ok, server_metadata_json(core_->options.server_version), kJson);
      case HttpRoute::kHealthLive:
        return send(bhttp::status::ok, "", kJson);
      case HttpRoute::kHealthReady:
        return send(repo.ready() ? bhttp::status::ok : bhttp::status::service_unavailable, "", kJson);
      case HttpRoute::kRepositoryIndex:
        return repository_index(req);
      case HttpRoute::kRepositoryLoad:
      case HttpRoute::kRepositoryUnload:
        return load_or_unload(m.model, m.route == HttpRoute::kRepositoryLoad);
      case HttpRoute::kModelMetadata: {
        auto md = repo.metadata(m.model, m.version);
        if (!md.ok()) return send_status(md.status());
        return send(bhttp::status::ok, model_metadata_json(*md), kJson);
      }
      case HttpRoute::kModelReady: {
        auto found = repo.find(m.model, m.version);
        if (!found.ok()) return send_status(found.status());
        return send(bhttp::status::ok, "", kJson);
      }
      case HttpRoute::kInfer:
        return infer(std::move(req), m.model, m.version);
      case HttpRoute::kMethodNotAllowed:
        return method_not_allowed(req);
      case HttpRoute::kNotFound:
        break;
    }
    return not_found(req);
  }

  void repository_index(const bhttp::request<bhttp::string_body>& req) {
    ModelRepository& repo = *core_->repo;
    bool ready_only = false;
    if (!req.body().empty()) {
      auto body = nlohmann::json::parse(req.body(), nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        repo.metrics().record_server_failure("invalid_argument");
        return send_error(bhttp::status::bad_request, "repository index: malformed JSON body");
      }
      if (body.contains("ready") && body["ready"].is_boolean()) ready_only = body["ready"].get<bool>();
    }
    return send(bhttp::status::ok, repository_index_json(repo.index(), ready_only), kJson);
  }

  // Loading compiles a model: the admin thread does it and this connection waits.
  void load_or_unload(const std::string& model, bool load) {
    auto self = shared_from_this();
    core_->admin->post([self, model, load] {
      Status st = load ? self->core_->repo->load(model) : self->core_->repo->unload(model);
      asio::post(self->stream_.get_executor(), [self, st] {
        if (!st.ok()) return self->send_status(st);
        self->send(bhttp::status::ok, "", kJson);
      });
    });
  }

  void infer(bhttp::request<bhttp::string_body> req, const std::string& model, const std::string& version) {
    ModelRepository& repo = *core_->repo;
    auto found = repo.find(model, version);
    if (!found.ok()) {
      repo.metrics().record_server_failure(failure_reason(found.status().code()));
      return send_status(found.status());
    }
    auto header = req.find("Inference-Header-Content-Length");
    auto json_length = json_length_header(header == req.end() ? std::nullopt
                                                              : std::optional<std::string_view>(sv(header->value())));
    if (!json_length.ok()) {
      (*found)->metrics().record_failure("invalid_argument");
      return send_status(json_length.status());
    }
    auto parsed = parse_infer_request(req.body(), *json_length, model, version);
    if (!parsed.ok()) {
      (*found)->metrics().record_failure(failure_reason(parsed.status().code()));
      return send_status(parsed.status());
    }
    BinaryOutputChoice binary = parsed->binary;
    core_->hold(shared_from_this());
    // Answers arrive on a model's thread: hand them to this connection's strand and return.
    std::weak_ptr<Session> weak = weak_from_this();
    repo.infer(std::move(parsed->request), [weak, gate = core_->gate, binary](Expected<InferResponse> result) {
      std::lock_guard<std::mutex> lock(gate->mu);
      std::shared_ptr<Session> self = weak.lock();
      if (!gate->open || !self) return;
      asio::post(self->stream_.get_executor(), [self, binary, result = std::move(result)]() mutable {
        self->core_->release(self.get());
        if (!result.ok()) return self->send_status(result.status());
        EncodedBody out = encode_infer_response(*result, binary);
        auto res = self->make_response(bhttp::status::ok, std::move(out.body),
                                       out.json_length ? "application/octet-stream" : kJson);
        if (out.json_length) res->set("Inference-Header-Content-Length", std::to_string(*out.json_length));
        self->write(std::move(res));
      });
    });
  }

  void not_found(const bhttp::request<bhttp::string_body>& req) {
    core_->repo->metrics().record_server_failure("no_route");
    send_error(bhttp::status::not_found, "no route for " + std::string(req.method_string()) + " " +
                                             std::string(req.target()));
  }
  void method_not_allowed(const bhttp::request<bhttp::string_body>& req) {
    core_->repo->metrics().record_server_failure("no_route");
    send_error(bhttp::status::method_not_allowed,
               std::string(req.method_string()) + " is not allowed on " + std::string(req.target()));
  }
  void send_status(const Status& st) {
    send_error(static_cast<bhttp::status>(http_status(st.code())), st.message());
  }
  void send_error(bhttp::status status, const std::string& message) { send(status, error_json(message), kJson); }

  std::shared_ptr<Response> make_response(bhttp::status status, std::string body, const char* content_type) {
    auto res = std::make_shared<Response>(status, version_);
    res->set(bhttp::field::server, "pyflame_rt");
    res->set(bhttp::field::content_type, content_type);
    res->keep_alive(keep_alive_);
    res->body() = std::move(body);
    res->prepare_payload();
    return res;
  }
  void send(bhttp::status status, std::string body, const char* content_type) {
    write(make_response(status, std::move(body), content_type));
  }

  void write(std::shared_ptr<Response> res) {
    stream_.expires_after(std::chrono::seconds(core_->options.idle_timeout_s));
    bool close_after = !res->keep_alive();
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res, close_after](beast::error_code ec, size_t) {
      if (!ec && close_after && self->draining_) return self->drain();
      if (ec || close_after) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  HttpServer::Impl* core_;  // outlives every session: its io_context owns their handlers
  bool keep_alive_ = true;
  bool draining_ = false;
  size_t drained_ = 0;
  static constexpr size_t kMaxDrainBytes = 256u << 20;
  std::array<char, 16384> drain_buffer_;
  unsigned version_ = 11;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (stopped.load() || ec == asio::error::operation_aborted) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);  // small answers must not wait for Nagle
      std::make_shared<Session>(std::move(socket), this)->run();
    }
    accept();
  });
}

void HttpServer::Impl::stop() {
  std::lock_guard<std::mutex> lock(stop_mu);
  if (stopped.exchange(true)) return;
  {
    std::lock_guard<std::mutex> g(gate->mu);
    gate->open = false;
  }
  ioc.stop();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  if (admin) admin->stop();  // a load under way finishes; its answer is dropped
  std::map<Session*, std::shared_ptr<Session>> left;
  {
    std::lock_guard<std::mutex> l(waiting_mu);
    left.swap(waiting);
  }
  left.clear();
  beast::error_code ec;
  acceptor.close(ec);
}

Status HttpOptions::validate() const {
  if (port < 0 || port > 65535) return invalid_argument("HttpOptions.port: expected 0..65535, got ", port);
  if (threads < 1 || threads > 256) return invalid_argument("HttpOptions.threads: expected 1..256, got ", threads);
  if (max_body_bytes < 1024) {
    return invalid_argument("HttpOptions.max_body_bytes: expected >= 1024, got ", max_body_bytes);
  }
  if (idle_timeout_s < 1) return invalid_argument("HttpOptions.idle_timeout_s: expected >= 1, got ", idle_timeout_s);
  return Status::OK();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

Expected<std::unique_ptr<HttpServer>> HttpServer::start(std::shared_ptr<ModelRepository> repository,
                                                        HttpOptions options) {
  RETURN_IF_ERROR(options.validate());
  if (!repository) return invalid_argument("HttpServer: the repository is null");
  auto impl = std::make_unique<Impl>();
  impl->repo = std::move(repository);
  impl->options = options;
  beast::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return invalid_argument("HttpOptions.host '", options.host, "': ", ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_status(StatusCode::kUnavailable, "HTTP server: cannot listen on ", options.host, ":", options.port, ": ",
                       ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->admin.emplace();
  impl->accept();
  for (int i = 0; i < options.threads; ++i) {
    impl->threads.emplace_back([io = impl.get()] { io->ioc.run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::stop() { impl_->stop(); }

}  // namespace pyflame_rt::net::http
