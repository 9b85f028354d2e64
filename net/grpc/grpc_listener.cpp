#include "net/grpc/grpc_listener.h"

#include "net/grpc/grpc_server.h"

namespace pyflame_rt::net {
namespace {

// Holds what its transport uses: the repository and the sequence table outlive it.
class GrpcListener final : public Listener {
 public:
  GrpcListener(std::shared_ptr<ModelRepository> repo, std::shared_ptr<SequenceTable> seq,
               std::unique_ptr<GrpcServer> server, std::string host)
      : repo_(std::move(repo)), seq_(std::move(seq)), server_(std::move(server)), host_(std::move(host)) {}
  ~GrpcListener() override { stop(); }
  std::string name() const override { return "grpc"; }
  std::string address() const override { return host_ + ":" + std::to_string(server_->port()); }
  void stop() override {
    server_->stop();
    seq_->stop();  // idempotent: the ZeroMQ listener may share it
  }

 private:
  std::shared_ptr<ModelRepository> repo_;
  std::shared_ptr<SequenceTable> seq_;
  std::unique_ptr<GrpcServer> server_;
  std::string host_;
};

}  // namespace

Expected<std::unique_ptr<Listener>> start_grpc_listener(std::shared_ptr<ModelRepository> repository,
                                                        std::shared_ptr<SequenceTable> sequences,
                                                        const std::string& host, int port, int max_concurrent_rpcs,
                                                        int* bound_port) {
  GrpcServerOptions o;
  o.host = host;
  o.port = port;
  o.max_concurrent_rpcs = max_concurrent_rpcs;
  ASSIGN_OR_RETURN(auto server, GrpcServer::start(*repository, *sequences, o));
  if (bound_port) *bound_port = server->port();
  return std::unique_ptr<Listener>(
      new GrpcListener(std::move(repository), std::move(sequences), std::move(server), host));
}

}  // namespace pyflame_rt::net
