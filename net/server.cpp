#include "net/server.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "net/grpc/grpc_listener.h"
#include "net/http/http_server.h"
#include "net/zmq/zmq_server_listener.h"

namespace pyflame_rt::net {
namespace {

class HttpListener : public Listener {
 public:
  HttpListener(std::unique_ptr<http::HttpServer> server, std::string host)
      : server_(std::move(server)), host_(std::move(host)) {}
  std::string name() const override { return "http"; }
  std::string address() const override { return host_ + ":" + std::to_string(server_->port()); }
  void stop() override { server_->stop(); }
  int port() const { return server_->port(); }

 private:
  std::unique_ptr<http::HttpServer> server_;
  std::string host_;
};

}  // namespace

Server::Server(std::shared_ptr<ModelRepository> repository, ServerOptions options)
    : repository_(std::move(repository)), options_(std::move(options)) {}

Server::~Server() { stop(); }

Expected<std::unique_ptr<Server>> Server::start(ServerOptions options) {
  RETURN_IF_ERROR(options.model_defaults.validate());
  auto repo = std::make_shared<ModelRepository>(options.model_defaults);
  if (!options.repository_dir.empty()) {
    RETURN_IF_ERROR(repo->set_directory(options.repository_dir));
    RETURN_IF_ERROR(repo->load_directory());
  }
  for (const auto& [name, path] : options.models) RETURN_IF_ERROR(repo->load(name, path));
  return start(std::move(repo), std::move(options));
}

Expected<std::unique_ptr<Server>> Server::start(std::shared_ptr<ModelRepository> repository, ServerOptions options) {
  if (!repository) return invalid_argument("Server: the repository is null");
  std::unique_ptr<Server> server(new Server(std::move(repository), std::move(options)));
  RETURN_IF_ERROR(server->start_listeners());
  return server;
}

Status Server::start_listeners() {
  if (options_.http_port >= 0) {
    http::HttpOptions h;
    h.host = options_.host;
    h.port = options_.http_port;
    h.threads = options_.http_threads;
    h.max_body_bytes = options_.max_body_bytes;
    ASSIGN_OR_RETURN(auto server, http::HttpServer::start(repository_, h));
    http_port_ = server->port();
    add_listener(std::make_unique<HttpListener>(std::move(server), options_.host));
  }
  // gRPC (net/grpc) and ZeroMQ (net/zmq) share one table of stateful sequences.
  const bool zmq = !options_.zmq_pull.empty() || !options_.zmq_pub.empty() || !options_.zmq_sub.empty();
  if (options_.grpc_port < 0 && !zmq) return Status::OK();
  SequenceOptions seq_options;
  seq_options.idle_timeout = std::chrono::milliseconds(options_.sequence_idle_ms);
  seq_options.max_sequences = options_.max_sequences;
  RETURN_IF_ERROR(seq_options.validate());
  auto sequences = std::make_shared<SequenceTable>(*repository_, seq_options);
  sequences_ = sequences;
  if (options_.grpc_port >= 0) {
    ASSIGN_OR_RETURN(auto grpc, start_grpc_listener(repository_, sequences, options_.host, options_.grpc_port,
                                                    options_.grpc_max_concurrent_rpcs, &grpc_port_));
    add_listener(std::move(grpc));
  }
  if (zmq) {
    ASSIGN_OR_RETURN(auto listener, start_zmq_listener(repository_, sequences, options_.zmq_pull, options_.zmq_pub,
                                                       options_.zmq_sub));
    add_listener(std::move(listener));
  }
  return Status::OK();
}

void Server::add_listener(std::unique_ptr<Listener> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.push_back(std::move(listener));
}

std::vector<std::string> Server::addresses() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(l->name() + " " + l->address());
  return out;
}

void Server::wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return stopped_; });
}

void Server::stop() {
  std::vector<std::unique_ptr<Listener>> listeners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    listeners.swap(listeners_);
  }
  // The runs in progress stop first (at their next check, kUnavailable "the run was stopped:
  // the model server is shutting down") and get up to shutdown_grace_ms to end, then 100 ms
  // for their answers to leave through the listeners: a run that would never end (a Loop of
  // 2^40 iterations) no longer outlives the server (pyflame_rt.serving's stop(), or the CLI's).
  const bool were_running = repository_->runs_in_progress() > 0;
  const bool ended =
      repository_->stop_runs(std::chrono::milliseconds(std::max<int64_t>(options_.shutdown_grace_ms, 0)));
  if (were_running && ended) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Listeners first (no new requests), then the models and the sequences (queued requests are
  // answered, dropped), and only then the listeners' objects: a queued request's answer calls
  // back into its listener's service (its in-flight count), which must still exist.
  for (auto it = listeners.rbegin(); it != listeners.rend(); ++it) (*it)->stop();
  repository_->stop();
  if (sequences_) sequences_->stop();
  listeners.clear();
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

}  // namespace pyflame_rt::net
