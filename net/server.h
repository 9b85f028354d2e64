// Server: one serving process — a ModelRepository and the listeners that reach it.
//
//   ServerOptions opts;
//   opts.models = {{"tiny_cnn", "examples/models/tiny_cnn.onnx"}};
//   opts.http_port = 8000;
//   auto server = Server::start(opts);          // models loaded, listening when this returns
//   (*server)->wait();                          // until stop() (e.g. from a signal thread)
//
// Listeners plug in through the Listener interface: HTTP is built in; gRPC and ZeroMQ
// listeners are added in start() where marked (or with add_listener() by an embedder).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "graph/status.h"
#include "net/model_repository.h"

namespace pyflame_rt::net {

class SequenceTable;

struct ServerOptions {
  std::vector<std::pair<std::string, std::string>> models;  // name -> model file or directory
  std::string repository_dir;                               // load-by-name; every model loaded at start
  ModelConfig model_defaults;                               // batching and session options per model
  std::string host = "0.0.0.0";
  int http_port = 8000;       // -1 = no HTTP listener, 0 = any free port
  int http_threads = 1;
  size_t max_body_bytes = 64u << 20;
  int grpc_port = -1;         // -1 = off
  int grpc_max_concurrent_rpcs = 0;  // 0 = unlimited; more answer RESOURCE_EXHAUSTED
  std::string zmq_pull;       // ZeroMQ endpoints; empty = off
  std::string zmq_pub;
  std::string zmq_sub;        // connected SUB socket (frame 0 = topic = model name); empty = off
  int sequence_idle_ms = 1000;  // stateful sequences (gRPC sequence_id, ZeroMQ stream) idle longer are freed
  size_t max_sequences = 4096;  // open at once; a new one beyond is RESOURCE_EXHAUSTED / 503
  // stop(): how long the runs in progress, once stopped, get to end (and be answered) before
  // the listeners close; a run still going then is abandoned to its device actor.
  int64_t shutdown_grace_ms = 1000;
};

// A transport in front of the repository.
class Listener {
 public:
  virtual ~Listener() = default;
  virtual std::string name() const = 0;      // "http", "grpc", "zmq"
  virtual std::string address() const = 0;   // "0.0.0.0:8000", "tcp://*:5555"
  // Stops accepting and joins its threads; answers arriving later are dropped. Idempotent.
  virtual void stop() = 0;
};

class Server {
 public:
  // Loads the models (all of them: a failure names the model and stops the start), then
  // starts the listeners.
  static Expected<std::unique_ptr<Server>> start(ServerOptions options);
  // A server over an existing repository (Python's MultiModelServer loads sessions into it).
  static Expected<std::unique_ptr<Server>> start(std::shared_ptr<ModelRepository> repository, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::shared_ptr<ModelRepository>& repository() const { return repository_; }
  void add_listener(std::unique_ptr<Listener> listener);
  // "http 0.0.0.0:8000", ... in start order.
  std::vector<std::string> addresses() const;
  int http_port() const { return http_port_; }  // bound port, -1 without HTTP
  int grpc_port() const { return grpc_port_; }  // bound port, -1 without gRPC
  // Options given that this build cannot serve yet (reported by the CLI, not fatal).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Blocks until stop(). Then: listeners stop, queued requests are answered, models unload.
  void wait();
  void stop();

 private:
  Server(std::shared_ptr<ModelRepository> repository, ServerOptions options);
  Status start_listeners();

  std::shared_ptr<ModelRepository> repository_;
  ServerOptions options_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::shared_ptr<SequenceTable> sequences_;  // shared by the gRPC and ZeroMQ listeners
  std::vector<std::string> warnings_;
  int http_port_ = -1;
  int grpc_port_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
};

}  // namespace pyflame_rt::net
