#include "net/grpc/grpc_server.h"

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/security/server_credentials.h>

#include <atomic>
#include <thread>

#include "net/grpc/inference_service.h"

namespace pyflame_rt::net {

Status GrpcServerOptions::validate() const {
  if (port < 0 || port > 65535) return invalid_argument("gRPC port: expected 0..65535, got ", port);
  if (max_concurrent_rpcs < 0) {
    return invalid_argument("max_concurrent_rpcs: expected >= 0 (0 = unlimited), got ", max_concurrent_rpcs);
  }
  if (max_message_bytes < 1024) {
    return invalid_argument("gRPC max_message_bytes: expected >= 1024, got ", max_message_bytes);
  }
  return Status::OK();
}

Expected<std::unique_ptr<GrpcServer>> GrpcServer::start(ModelRepository& repository, SequenceTable& sequences,
                                                        GrpcServerOptions options) {
  RETURN_IF_ERROR(options.validate());
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->options_ = options;
  server->service_ = std::make_unique<InferenceService>(repository, sequences, options.max_concurrent_rpcs,
                                                         options.max_unwritten_per_stream);
  grpc::ServerBuilder builder;
  const std::string address = options.host + ":" + std::to_string(options.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    server->service_->stop();
    return make_status(StatusCode::kUnavailable, "gRPC: cannot listen on ", address,
                       " (address in use, or not a local address)");
  }
  return server;
}

GrpcServer::~GrpcServer() { stop(); }

void GrpcServer::stop() {
  if (!server_) return;
  // Shutdown() blocks through the grace period; calls still waiting for a model after it are
  // answered UNAVAILABLE by us, so Wait() does not wait for the model (a long batch timeout).
  std::atomic<bool> shut{false};
  const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
  std::thread shutdown([this, &shut] {
    server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
    shut = true;
  });
  while (!shut.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  service_->fail_pending();
  shutdown.join();
  server_->Wait();
  server_.reset();
  service_->stop();
}

}  // namespace pyflame_rt::net
