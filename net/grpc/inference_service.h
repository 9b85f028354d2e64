// InferenceService: inference.GRPCInferenceService (KServe v2) on a ModelRepository, with
// gRPC's callback API: a handler validates, hands the request to the repository (a batcher)
// or the SequenceTable and returns; the answer finishes the RPC from the completion callback.
// No handler thread waits for a model and no model code runs on a gRPC thread; repository
// loads (which compile) run on this service's own admin thread.
//
// Errors are gRPC status codes through the one StatusCode table (infer_types.h):
// INVALID_ARGUMENT for a bad request, NOT_FOUND for an unknown model/version, RESOURCE_EXHAUSTED
// for a full queue or more than max_concurrent_rpcs in flight, UNAVAILABLE while stopping.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "net/model_repository.h"
#include "net/proto/grpc_service.grpc.pb.h"
#include "net/sequence/sequence_table.h"

namespace pyflame_rt::net {

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // max_concurrent_rpcs <= 0: no limit of ours (gRPC's own flow control still applies).
  // max_unwritten_per_stream: answers of one ModelStreamInfer call held for a client that does
  // not read; past it the call stops reading requests until the client catches up.
  InferenceService(ModelRepository& repository, SequenceTable& sequences, int max_concurrent_rpcs,
                   int max_unwritten_per_stream = 256);
  ~InferenceService() override;

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest* req,
                                       inference::ServerLiveResponse* resp) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest* req,
                                        inference::ServerReadyResponse* resp) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* resp) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest* req,
                                           inference::ServerMetadataResponse* resp) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx, const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* resp) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* ModelStreamInfer(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* req,
                                            inference::RepositoryIndexResponse* resp) override;
  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                const inference::RepositoryModelLoadRequest* req,
                                                inference::RepositoryModelLoadResponse* resp) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* ctx,
                                                  const inference::RepositoryModelUnloadRequest* req,
                                                  inference::RepositoryModelUnloadResponse* resp) override;

  // One inference, answered through `done`: a sequence request goes to the SequenceTable,
  // any other to the repository. Shared by ModelInfer and ModelStreamInfer.
  void dispatch(InferRequest request, InferCallback done);
  // Counts an RPC in flight; false (and nothing counted) past max_concurrent_rpcs.
  bool try_enter();
  void leave() { calls_->in_flight.fetch_sub(1, std::memory_order_relaxed); }
  grpc::Status too_many_rpcs() const;
  int max_unwritten_per_stream() const { return max_unwritten_per_stream_; }
  // Times a stream stopped reading because its client did not read its answers.
  uint64_t stream_read_pauses() const { return read_pauses_.load(); }
  void count_read_pause() { read_pauses_.fetch_add(1, std::memory_order_relaxed); }
  // Calls still waiting for a model register how to answer them now; at shutdown, after the
  // grace period, fail_pending() answers them UNAVAILABLE (gRPC's Wait() would otherwise wait
  // for the model, e.g. a long batch timeout). The first answer wins; a late one is dropped.
  uint64_t add_pending(std::function<void()> fail);
  void remove_pending(uint64_t id);
  void fail_pending();
  // Stops the admin thread; loads not started are answered UNAVAILABLE.
  void stop();

 private:
  void run_admin(std::function<void()> job, grpc::ServerUnaryReactor* reactor);

  ModelRepository& repository_;
  SequenceTable& sequences_;
  const int max_concurrent_rpcs_;
  const int max_unwritten_per_stream_;
  // The RPCs in flight and the calls waiting for a model, shared with ModelInfer's answer
  // callbacks: a model can answer after the service is gone (a batcher failing its queue as the
  // repository stops, after the server: a heap use-after-free under ASan, stop 15), and such a
  // callback must not reach the service through `this`.
  struct CallBook {
    std::atomic<int> in_flight{0};
    std::mutex mu;
    uint64_t next = 0;
    std::map<uint64_t, std::function<void()>> pending;
    void remove(uint64_t id) {
      std::lock_guard<std::mutex> lock(mu);
      pending.erase(id);
    }
  };
  const std::shared_ptr<CallBook> calls_ = std::make_shared<CallBook>();
  std::atomic<uint64_t> read_pauses_{0};
  std::mutex admin_mu_;
  std::condition_variable admin_cv_;
  std::deque<std::pair<std::function<void()>, grpc::ServerUnaryReactor*>> admin_jobs_;
  bool admin_stopping_ = false;
  std::thread admin_thread_;
};

}  // namespace pyflame_rt::net
