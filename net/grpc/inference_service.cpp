#include "net/grpc/inference_service.h"

#include <algorithm>

#include "net/grpc/grpc_codec.h"
#include "net/grpc/stream_infer_reactor.h"

#ifndef PFRT_VERSION
#define PFRT_VERSION "0.0.0"
#endif

namespace pyflame_rt::net {
namespace {

// The extensions ServerMetadata announces (KServe/Triton names of what we serve).
constexpr const char* kExtensions[] = {"model_repository", "schedule_policy", "sequence", "binary_tensor_data"};

grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

void fill_tensor_metadata(const std::vector<TensorInfo>& infos,
                          google::protobuf::RepeatedPtrField<inference::ModelMetadataResponse::TensorMetadata>* out) {
  for (const TensorInfo& info : infos) {
    auto* t = out->Add();
    t->set_name(info.name);
    t->set_datatype(kserve_datatype(info.dtype));
    for (const Dim& d : info.shape.dims) t->add_shape(d.known() ? d.value : -1);
  }
}

}  // namespace

InferenceService::InferenceService(ModelRepository& repository, SequenceTable& sequences, int max_concurrent_rpcs,
                                   int max_unwritten_per_stream)
    : repository_(repository), sequences_(sequences), max_concurrent_rpcs_(max_concurrent_rpcs),
      max_unwritten_per_stream_(std::max(1, max_unwritten_per_stream)) {
  admin_thread_ = std::thread([this] {
    for (;;) {
      std::pair<std::function<void()>, grpc::ServerUnaryReactor*> job;
      {
        std::unique_lock<std::mutex> lock(admin_mu_);
        admin_cv_.wait(lock, [this] { return admin_stopping_ || !admin_jobs_.empty(); });
        if (admin_jobs_.empty()) return;
        job = std::move(admin_jobs_.front());
        admin_jobs_.pop_front();
      }
      job.first();
    }
  });
}

InferenceService::~InferenceService() { stop(); }

void InferenceService::stop() {
  std::deque<std::pair<std::function<void()>, grpc::ServerUnaryReactor*>> left;
  {
    std::lock_guard<std::mutex> lock(admin_mu_);
    if (admin_stopping_ && !admin_thread_.joinable()) return;
    admin_stopping_ = true;
    left.swap(admin_jobs_);
  }
  admin_cv_.notify_all();
  for (auto& job : left) job.second->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is stopping"));
  if (admin_thread_.joinable()) admin_thread_.join();
}

uint64_t InferenceService::add_pending(std::function<void()> fail) {
  std::lock_guard<std::mutex> lock(calls_->mu);
  calls_->pending.emplace(calls_->next, std::move(fail));
  return calls_->next++;
}

void InferenceService::remove_pending(uint64_t id) { calls_->remove(id); }

void InferenceService::fail_pending() {
  std::map<uint64_t, std::function<void()>> pending;
  {
    std::lock_guard<std::mutex> lock(calls_->mu);
    pending.swap(calls_->pending);
  }
  for (auto& [id, fail] : pending) fail();
}

void InferenceService::run_admin(std::function<void()> job, grpc::ServerUnaryReactor* reactor) {
  {
    std::lock_guard<std::mutex> lock(admin_mu_);
    if (!admin_stopping_) {
      admin_jobs_.emplace_back(std::move(job), reactor);
      admin_cv_.notify_one();
      return;
    }
  }
  reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is stopping"));
}

bool InferenceService::try_enter() {
  int now = calls_->in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
  if (max_concurrent_rpcs_ > 0 && now > max_concurrent_rpcs_) {
    calls_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

grpc::Status InferenceService::too_many_rpcs() const {
  repository_.metrics().record_server_failure("too_many_rpcs");
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "more than max_concurrent_rpcs = " + std::to_string(max_concurrent_rpcs_) +
                          " RPCs in flight; retry later");
}

void InferenceService::dispatch(InferRequest request, InferCallback done) {
  if (request.sequence) {
    sequences_.infer(std::move(request), std::move(done));
  } else {
    repository_.infer(std::move(request), std::move(done));
  }
}

grpc::ServerUnaryReactor* InferenceService::ServerLive(grpc::CallbackServerContext* ctx,
                                                       const inference::ServerLiveRequest*,
                                                       inference::ServerLiveResponse* resp) {
  resp->set_live(true);
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(grpc::CallbackServerContext* ctx,
                                                        const inference::ServerReadyRequest*,
                                                        inference::ServerReadyResponse* resp) {
  resp->set_ready(repository_.ready());
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(grpc::CallbackServerContext* ctx,
                                                       const inference::ModelReadyRequest* req,
                                                       inference::ModelReadyResponse* resp) {
  // Triton answers an unknown model with NOT_FOUND rather than ready = false.
  auto model = repository_.find(req->name(), req->version());
  if (!model.ok()) return finish(ctx, to_grpc_status(model.status()));
  resp->set_ready(repository_.model_ready(req->name(), req->version()));
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(grpc::CallbackServerContext* ctx,
                                                           const inference::ServerMetadataRequest*,
                                                           inference::ServerMetadataResponse* resp) {
  resp->set_name("pyflame_rt");
  resp->set_version(PFRT_VERSION);
  for (const char* e : kExtensions) resp->add_extensions(e);
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(grpc::CallbackServerContext* ctx,
                                                          const inference::ModelMetadataRequest* req,
                                                          inference::ModelMetadataResponse* resp) {
  auto meta = repository_.metadata(req->name(), req->version());
  if (!meta.ok()) return finish(ctx, to_grpc_status(meta.status()));
  resp->set_name(meta->name);
  for (const auto& v : meta->versions) resp->add_versions(v);
  resp->set_platform(meta->platform);
  fill_tensor_metadata(meta->inputs, resp->mutable_inputs());
  fill_tensor_metadata(meta->outputs, resp->mutable_outputs());
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(grpc::CallbackServerContext* ctx,
                                                       const inference::ModelInferRequest* req,
                                                       inference::ModelInferResponse* resp) {
  if (!try_enter()) return finish(ctx, too_many_rpcs());
  auto request = request_from_proto(*req);
  if (!request.ok()) {
    leave();
    repository_.metrics().record_server_failure(failure_reason(request.status().code()));
    return finish(ctx, to_grpc_status(request.status()));
  }
  // The client's gRPC deadline bounds the wait in the queue, as the KServe `timeout` parameter
  // does (which wins when both are given): a request whose deadline passes while queued is
  // dropped with DEADLINE_EXCEEDED and counted (failure reason "timeout").
  if (request->timeout_us == 0) {
    const auto now = std::chrono::system_clock::now();
    const auto deadline = ctx->deadline();
    if (deadline < now + std::chrono::hours(24 * 365)) {  // a finite deadline
      if (deadline <= now) {
        leave();
        if (auto model = repository_.find(request->model_name, request->model_version); model.ok()) {
          (*model)->metrics().record_failure(failure_reason(StatusCode::kDeadlineExceeded));
        } else {
          repository_.metrics().record_server_failure(failure_reason(StatusCode::kDeadlineExceeded));
        }
        return finish(ctx, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                        "model '" + request->model_name + "': the request's deadline passed before it ran"));
      }
      request->timeout_us = std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count());
    }
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // The reactor and *resp live until Finish() has been called, so the callback may use them
  // from whichever thread answers (a device actor, a sequence worker, or this one). `answered`
  // makes the model's answer and a shutdown's UNAVAILABLE exclusive.
  auto answered = std::make_shared<std::atomic<bool>>(false);
  const uint64_t pending = add_pending([reactor, answered] {
    if (!answered->exchange(true)) reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is stopping"));
  });
  // The callback holds the CallBook, not the service: it may run after the service is gone.
  dispatch(std::move(*request), [calls = calls_, reactor, resp, answered, pending](Expected<InferResponse> result) {
    calls->remove(pending);
    calls->in_flight.fetch_sub(1, std::memory_order_relaxed);  // before Finish(), as leave()
    if (answered->exchange(true)) return;
    if (result.ok()) {
      response_to_proto(*result, resp);
      reactor->Finish(grpc::Status::OK);
    } else {
      reactor->Finish(to_grpc_status(result.status()));
    }
  });
  return reactor;
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
InferenceService::ModelStreamInfer(grpc::CallbackServerContext* ctx) {
  return new StreamInferReactor(*this, ctx);
}

grpc::ServerUnaryReactor* InferenceService::RepositoryIndex(grpc::CallbackServerContext* ctx,
                                                            const inference::RepositoryIndexRequest* req,
                                                            inference::RepositoryIndexResponse* resp) {
  for (const RepositoryEntry& e : repository_.index()) {
    if (req->ready() && e.state != ModelState::kReady) continue;
    auto* m = resp->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(model_state_name(e.state));
    m->set_reason(e.reason);
  }
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                                const inference::RepositoryModelLoadRequest* req,
                                                                inference::RepositoryModelLoadResponse*) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (req->model_name().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "RepositoryModelLoad: model_name is empty"));
    return reactor;
  }
  // Loading compiles the model (seconds): never on a gRPC thread.
  std::string name = req->model_name();
  run_admin([this, reactor, name] { reactor->Finish(to_grpc_status(repository_.load(name))); }, reactor);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::RepositoryModelUnload(grpc::CallbackServerContext* ctx,
                                                                  const inference::RepositoryModelUnloadRequest* req,
                                                                  inference::RepositoryModelUnloadResponse*) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::string name = req->model_name();
  // Unloading waits for the model's requests in flight to finish.
  run_admin([this, reactor, name] { reactor->Finish(to_grpc_status(repository_.unload(name))); }, reactor);
  return reactor;
}

}  // namespace pyflame_rt::net
