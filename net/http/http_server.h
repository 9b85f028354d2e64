// KServe v2 HTTP/REST listener over Boost.Beast (Beast stays out of this header).
//
//   auto repo = std::make_shared<ModelRepository>();
//   repo->load("tiny_cnn", "examples/models/tiny_cnn.onnx");
//   HttpOptions opts;  opts.port = 8000;
//   auto server = HttpServer::start(repo, opts);     // listening when this returns
//   ... (*server)->port() ...
//   (*server)->stop();
//
// I/O threads only parse requests and write answers: inference goes to the repository (the
// model's batcher runs it and calls back), model loading to one admin thread. Routes, status
// codes and the binary tensor extension are listed in docs/serving.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "graph/status.h"
#include "net/model_repository.h"

namespace pyflame_rt::net::http {

struct HttpOptions {
  std::string host = "0.0.0.0";
  int port = 8000;                           // 0 = any free port (see HttpServer::port())
  int threads = 1;                           // I/O threads
  size_t max_body_bytes = 64u << 20;         // larger bodies are answered 413
  int idle_timeout_s = 60;                   // a silent or vanishing client is closed after this
  std::string server_version = "0.1.0";      // reported by GET /v2

  Status validate() const;
};

class HttpServer {
 public:
  static Expected<std::unique_ptr<HttpServer>> start(std::shared_ptr<ModelRepository> repository,
                                                     HttpOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;  // the bound port
  // Stops accepting, closes connections and joins the I/O and admin threads. Idempotent.
  // Answers still coming from the repository afterwards are dropped.
  void stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyflame_rt::net::http
