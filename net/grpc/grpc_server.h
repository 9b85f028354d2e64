// GrpcServer: the KServe v2 gRPC listener of the server process.
//
//   GrpcServerOptions o;  o.port = 8001;          // 0 picks a free port
//   auto server = GrpcServer::start(repository, sequences, o);
//   std::cout << (*server)->port();
//   (*server)->stop();                             // in-flight RPCs get `shutdown_grace` to finish
//
// The repository and the sequence table belong to the server process and outlive this.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "net/model_repository.h"
#include "net/sequence/sequence_table.h"

namespace grpc {
class Server;
}

namespace pyflame_rt::net {

class InferenceService;

struct GrpcServerOptions {
  std::string host = "0.0.0.0";
  int port = 8001;
  int max_concurrent_rpcs = 0;                  // 0: unlimited; more answer RESOURCE_EXHAUSTED
  int max_message_bytes = 64 << 20;             // one request or response
  int max_unwritten_per_stream = 256;           // ModelStreamInfer back-pressure (see InferenceService)
  std::chrono::milliseconds shutdown_grace{2000};

  Status validate() const;
};

class GrpcServer {
 public:
  static Expected<std::unique_ptr<GrpcServer>> start(ModelRepository& repository, SequenceTable& sequences,
                                                     GrpcServerOptions options = {});
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  int port() const { return port_; }
  const InferenceService& service() const { return *service_; }
  // Stops accepting, lets RPCs in flight finish within shutdown_grace, cancels the rest.
  // Idempotent.
  void stop();

 private:
  GrpcServer() = default;
  GrpcServerOptions options_;
  int port_ = 0;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace pyflame_rt::net
