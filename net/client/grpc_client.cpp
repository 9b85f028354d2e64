#include "net/client/grpc_client.h"

#include <grpcpp/grpcpp.h>

#include "net/infer_types.h"
#include "net/proto/grpc_service.grpc.pb.h"

namespace pyflame_rt::net {
namespace {

Status from_grpc(const grpc::Status& st) {
  return Status(status_code_from_grpc(static_cast<int>(st.error_code())), "gRPC: " + st.error_message());
}

class GrpcClient final : public InferenceClient {
 public:
  GrpcClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
      : stub_(inference::GRPCInferenceService::NewStub(channel)), options_(std::move(options)) {}

  Expected<TensorMap> infer(const std::string& model, const TensorMap& feeds,
                            const std::vector<std::string>& outputs) override {
    return infer_async(model, feeds, outputs).get();
  }

  std::future<Expected<TensorMap>> infer_async(const std::string& model, const TensorMap& feeds,
                                               const std::vector<std::string>& outputs) override {
    // Everything the call touches lives in one heap block until its callback has run.
    struct Call {
      grpc::ClientContext context;
      inference::ModelInferRequest request;
      inference::ModelInferResponse response;
      std::promise<Expected<TensorMap>> promise;
    };
    auto call = std::make_shared<Call>();
    std::future<Expected<TensorMap>> future = call->promise.get_future();
    call->request.set_model_name(model);
    call->request.set_model_version(options_.model_version);
    for (const auto& [name, tensor] : feeds) {
      const char* datatype = kserve_datatype(tensor.dtype());
      if (!*datatype) {
        call->promise.set_value(invalid_argument("input '", name, "': ", dtype_name(tensor.dtype()),
                                                 " has no KServe datatype"));
        return future;
      }
      auto* in = call->request.add_inputs();
      in->set_name(name);
      in->set_datatype(datatype);
      for (int64_t d : tensor.dims()) in->add_shape(d);
      append_tensor_bytes(tensor, call->request.add_raw_input_contents());
    }
    for (const auto& o : outputs) call->request.add_outputs()->set_name(o);
    call->context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    stub_->async()->ModelInfer(&call->context, &call->request, &call->response, [call](grpc::Status st) {
      if (!st.ok()) {
        call->promise.set_value(from_grpc(st));
        return;
      }
      call->promise.set_value(decode(call->response));
    });
    return future;
  }

  Expected<bool> live() override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    inference::ServerLiveResponse resp;
    grpc::Status st = stub_->ServerLive(&ctx, {}, &resp);
    if (!st.ok()) return from_grpc(st);
    return resp.live();
  }

  Expected<bool> ready() override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    inference::ServerReadyResponse resp;
    grpc::Status st = stub_->ServerReady(&ctx, {}, &resp);
    if (!st.ok()) return from_grpc(st);
    return resp.ready();
  }

 private:
  static Expected<TensorMap> decode(const inference::ModelInferResponse& resp) {
    if (resp.raw_output_contents_size() != resp.outputs_size()) {
      return make_status(StatusCode::kFail, "gRPC answer: ", resp.outputs_size(), " outputs but ",
                         resp.raw_output_contents_size(), " raw_output_contents (typed contents are not read here)");
    }
    TensorMap out;
    for (int i = 0; i < resp.outputs_size(); ++i) {
      const auto& o = resp.outputs(i);
      const std::string what = "output '" + o.name() + "'";
      ASSIGN_OR_RETURN(DType dtype, dtype_from_kserve(o.datatype()));
      ASSIGN_OR_RETURN(Dims dims, dims_from_request({o.shape().begin(), o.shape().end()}, what));
      const std::string& raw = resp.raw_output_contents(i);
      ASSIGN_OR_RETURN(out[o.name()], tensor_from_bytes(dtype, dims, raw.data(), raw.size(), what));
    }
    return out;
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  ClientOptions options_;
};

}  // namespace

Expected<std::unique_ptr<InferenceClient>> make_grpc_client(const std::string& target, ClientOptions options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<InferenceClient>(new GrpcClient(std::move(channel), std::move(options)));
}

}  // namespace pyflame_rt::net
