// The gRPC listener end to end on 127.0.0.1: the C++ client (net/client) and raw stubs.
#include "net/grpc/grpc_server.h"

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <thread>

#include "net/client/inference_client.h"
#include "net/grpc/inference_service.h"
#include "net/proto/grpc_service.grpc.pb.h"
#include "net/server.h"

namespace pyflame_rt::net {
namespace {

const std::string kCnn = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";
const std::string kGru = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_gru.onnx";

Tensor image(int batch, float seed) {
  Tensor t(DType::kFloat32, {batch, 3, 32, 32});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = seed + 0.001f * static_cast<float>(i % 97);
  return t;
}

float max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dims(), b.dims());
  float d = 0;
  for (int64_t i = 0; i < a.numel() && i < b.numel(); ++i) {
    d = std::max(d, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  }
  return d;
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(repo_.load("cnn", kCnn).ok());
    ASSERT_TRUE(repo_.load("gru", kGru).ok());
    sequences_ = std::make_unique<SequenceTable>(repo_);
    GrpcServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    auto server = GrpcServer::start(repo_, *sequences_, o);
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    server_ = std::move(*server);
    target_ = "127.0.0.1:" + std::to_string(server_->port());
    stub_ = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (sequences_) sequences_->stop();
    repo_.stop();
  }
  std::unique_ptr<grpc::ClientContext> context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  ModelRepository repo_;
  std::unique_ptr<SequenceTable> sequences_;
  std::unique_ptr<GrpcServer> server_;
  std::string target_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

TEST_F(GrpcServerTest, ClientInferMatchesTheSession) {
  auto client = InferenceClient::create("grpc://" + target_);
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  Tensor x = image(2, 0.25f);
  auto session = InferenceSession::create(kCnn);
  ASSERT_TRUE(session.ok());
  auto want = (*session)->run({}, {{"image", x}});
  ASSERT_TRUE(want.ok());
  auto got = (*client)->infer("cnn", {{"image", x}});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_LT(max_diff(got->at("probs"), (*want)[0]), 1e-5f);
  // infer_batch: several requests in flight, answers in order.
  std::vector<TensorMap> feeds;
  for (int i = 0; i < 6; ++i) feeds.push_back({{"image", image(1, 0.1f * i)}});
  auto all = (*client)->infer_batch("cnn", feeds);
  ASSERT_EQ(all.size(), feeds.size());
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_TRUE(all[i].ok()) << all[i].status().to_string();
    auto one = (*session)->run({}, feeds[i]);
    EXPECT_LT(max_diff(all[i]->at("probs"), (*one)[0]), 1e-5f) << i;
  }
  EXPECT_TRUE(*(*client)->live());
  EXPECT_TRUE(*(*client)->ready());
}

TEST_F(GrpcServerTest, MetadataReadyAndRepositoryRpcs) {
  inference::ModelMetadataRequest mreq;
  mreq.set_name("cnn");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(stub_->ModelMetadata(context().get(), mreq, &meta).ok());
  EXPECT_EQ(meta.name(), "cnn");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).name(), "image");
  EXPECT_EQ(meta.inputs(0).datatype(), "FP32");
  EXPECT_EQ(meta.inputs(0).shape(0), -1);  // the batch dim varies
  EXPECT_EQ(meta.inputs(0).shape(1), 3);

  inference::ServerMetadataResponse server_meta;
  ASSERT_TRUE(stub_->ServerMetadata(context().get(), {}, &server_meta).ok());
  EXPECT_EQ(server_meta.name(), "pyflame_rt");

  inference::ModelReadyRequest ready_req;
  ready_req.set_name("cnn");
  inference::ModelReadyResponse ready;
  ASSERT_TRUE(stub_->ModelReady(context().get(), ready_req, &ready).ok());
  EXPECT_TRUE(ready.ready());
  ready_req.set_name("nope");
  EXPECT_EQ(stub_->ModelReady(context().get(), ready_req, &ready).error_code(), grpc::StatusCode::NOT_FOUND);

  inference::RepositoryIndexResponse index;
  ASSERT_TRUE(stub_->RepositoryIndex(context().get(), {}, &index).ok());
  std::vector<std::string> names;
  for (const auto& m : index.models()) names.push_back(m.name());
  EXPECT_EQ(names, (std::vector<std::string>{"cnn", "gru"}));

  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("gru");
  inference::RepositoryModelUnloadResponse unloaded;
  ASSERT_TRUE(stub_->RepositoryModelUnload(context().get(), unload, &unloaded).ok());
  EXPECT_FALSE(repo_.model_ready("gru"));
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("gru");
  inference::RepositoryModelLoadResponse loaded;
  auto st = stub_->RepositoryModelLoad(context().get(), load, &loaded);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(repo_.model_ready("gru"));
}

TEST_F(GrpcServerTest, BadRequestsGetTheirStatusCodes) {
  auto client = InferenceClient::create("grpc://" + target_);
  ASSERT_TRUE(client.ok());
  auto unknown = (*client)->infer("nope", {{"image", image(1, 0)}});
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound) << unknown.status().to_string();
  auto wrong_shape = (*client)->infer("cnn", {{"image", Tensor(DType::kFloat32, {1, 4, 32, 32})}});
  EXPECT_EQ(wrong_shape.status().code(), StatusCode::kInvalidArgument) << wrong_shape.status().to_string();
  auto wrong_output = (*client)->infer("cnn", {{"image", image(1, 0)}}, {"logits"});
  EXPECT_EQ(wrong_output.status().code(), StatusCode::kInvalidArgument) << wrong_output.status().to_string();

  inference::ModelInferRequest req;
  req.set_model_name("cnn");
  auto* in = req.add_inputs();
  in->set_name("image");
  in->set_datatype("FP32");
  for (int64_t d : {1, 3, 32, 32}) in->add_shape(d);
  req.add_raw_input_contents(std::string(100, '\0'));  // 12288 bytes expected
  inference::ModelInferResponse resp;
  auto st = stub_->ModelInfer(context().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("12288"), std::string::npos) << st.error_message();
  // The server still serves after all of that.
  EXPECT_TRUE((*client)->infer("cnn", {{"image", image(1, 0)}}).ok());
}

TEST_F(GrpcServerTest, StreamInferAnswersInOrderAndCarriesSequenceState) {
  auto ctx = context();
  auto stream = stub_->ModelStreamInfer(ctx.get());
  auto gru = [](const std::string& seq, float seed, bool start, bool end) {
    inference::ModelInferRequest req;
    req.set_model_name("gru");
    req.set_id(seq + "-" + std::to_string(seed));
    (*req.mutable_parameters())["sequence_id"].set_string_param(seq);
    if (start) (*req.mutable_parameters())["sequence_start"].set_bool_param(true);
    if (end) (*req.mutable_parameters())["sequence_end"].set_bool_param(true);
    auto* in = req.add_inputs();
    in->set_name("features");
    in->set_datatype("FP32");
    for (int64_t d : {1, 4, 40}) in->add_shape(d);
    std::vector<float> x(160);
    for (size_t i = 0; i < x.size(); ++i) x[i] = seed + 0.01f * static_cast<float>(i % 13);
    req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(x.data()), x.size() * 4));
    return req;
  };
  // Two chunks of sequence A, a bad request, then the same first chunk as a fresh sequence B.
  ASSERT_TRUE(stream->Write(gru("A", 0.1f, true, false)));
  ASSERT_TRUE(stream->Write(gru("A", 0.2f, false, true)));
  auto bad = gru("A", 0.3f, false, false);
  bad.mutable_inputs(0)->set_datatype("INT4");
  ASSERT_TRUE(stream->Write(bad));
  ASSERT_TRUE(stream->Write(gru("B", 0.1f, true, false)));
  stream->WritesDone();
  std::vector<inference::ModelStreamInferResponse> answers;
  inference::ModelStreamInferResponse r;
  while (stream->Read(&r)) answers.push_back(r);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0].infer_response().id(), "A-0.100000");
  EXPECT_EQ(answers[1].infer_response().id(), "A-0.200000");
  EXPECT_NE(answers[2].error_message().find("INT4"), std::string::npos) << answers[2].error_message();
  EXPECT_TRUE(answers[3].error_message().empty()) << answers[3].error_message();
  // A's first chunk and B's (the same input, fresh state) agree; A's second differs (state).
  for (size_t i : {0u, 1u, 3u}) {
    ASSERT_TRUE(answers[i].error_message().empty()) << "answer " << i << ": " << answers[i].error_message();
    ASSERT_GE(answers[i].infer_response().raw_output_contents_size(), 1)
        << "answer " << i << ": " << answers[i].infer_response().ShortDebugString();
  }
  const std::string& a0 = answers[0].infer_response().raw_output_contents(0);
  const std::string& a1 = answers[1].infer_response().raw_output_contents(0);
  const std::string& b0 = answers[3].infer_response().raw_output_contents(0);
  EXPECT_EQ(a0, b0);
  EXPECT_NE(a0, a1);
  EXPECT_EQ(sequences_->stats().ended, 1u);
}

TEST_F(GrpcServerTest, TooManyConcurrentRpcsAreResourceExhausted) {
  server_->stop();
  GrpcServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_concurrent_rpcs = 1;
  auto server = GrpcServer::start(repo_, *sequences_, o);
  ASSERT_TRUE(server.ok());
  server_ = std::move(*server);
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  // An open stream holds the one slot; a unary call meanwhile is refused at once.
  auto sctx = context();
  auto stream = stub->ModelStreamInfer(sctx.get());
  // Wait (bounded) until the server has counted the stream: a ServerLive call does not count.
  grpc::Status st;
  inference::ModelInferRequest req;
  req.set_model_name("cnn");
  inference::ModelInferResponse resp;
  for (int i = 0; i < 200; ++i) {
    st = stub->ModelInfer(context().get(), req, &resp);
    if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  stream->WritesDone();
  grpc::Status finished = stream->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_code() << " " << finished.error_message();
  // With the stream gone the slot is free again (the empty request is then a bad argument).
  for (int i = 0; i < 200; ++i) {
    st = stub->ModelInfer(context().get(), req, &resp);
    if (st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}


TEST_F(GrpcServerTest, StreamPushesBackOnAClientThatSendsFasterThanItReads) {
  server_->stop();
  GrpcServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_unwritten_per_stream = 2;
  auto server = GrpcServer::start(repo_, *sequences_, o);
  ASSERT_TRUE(server.ok());
  server_ = std::move(*server);
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  auto ctx = context();
  auto stream = stub->ModelStreamInfer(ctx.get());
  constexpr int kRequests = 40;
  std::thread writer([&] {
    for (int i = 0; i < kRequests; ++i) {
      inference::ModelInferRequest req;
      req.set_model_name("cnn");
      req.set_id(std::to_string(i));
      auto* in = req.add_inputs();
      in->set_name("image");
      in->set_datatype("FP32");
      for (int64_t d : {1, 3, 32, 32}) in->add_shape(d);
      Tensor x = image(1, 0.01f * i);
      req.add_raw_input_contents(std::string(static_cast<const char*>(x.raw_data()), x.nbytes()));
      if (!stream->Write(req)) break;
    }
    stream->WritesDone();
  });
  std::vector<std::string> ids;
  inference::ModelStreamInferResponse r;
  while (stream->Read(&r)) {
    EXPECT_TRUE(r.error_message().empty()) << r.error_message();
    ids.push_back(r.infer_response().id());
  }
  writer.join();
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(ids.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(ids[i], std::to_string(i));
  // 40 requests in a burst against 2 unwritten answers: reading paused at least once, and
  // every request was still answered, in order.
  EXPECT_GT(server_->service().stream_read_pauses(), 0u);
}


TEST(GrpcServerStop, AnswersCallsStillWaitingForAModel) {
  // A batch that would form only after two minutes: stop() must not wait for it.
  ModelConfig config;
  config.batching.max_batch_size = 64;
  config.batching.batch_timeout_ms = 120000;
  config.batching.request_timeout_ms = 300000;
  ModelRepository repo(config);
  ASSERT_TRUE(repo.load("cnn", kCnn).ok());
  SequenceTable sequences(repo);
  GrpcServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.shutdown_grace = std::chrono::milliseconds(200);
  auto server = GrpcServer::start(repo, sequences, o);
  ASSERT_TRUE(server.ok());
  auto client = InferenceClient::create("grpc://127.0.0.1:" + std::to_string((*server)->port()));
  ASSERT_TRUE(client.ok());
  auto pending = (*client)->infer_async("cnn", {{"image", image(1, 0)}});
  // Bounded wait until the request sits in the batcher's queue.
  for (int i = 0; i < 500 && (*repo.find("cnn"))->batcher().stats().queued == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ((*repo.find("cnn"))->batcher().stats().queued, 1);
  (*server)->stop();
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  auto result = pending.get();
  EXPECT_FALSE(result.ok());
  sequences.stop();
  repo.stop();
}

// The whole server's stop with a unary call queued and one of a sequence: its answer calls back
// into the gRPC service, which must outlive the models' stop (the listeners were destroyed
// first, and that callback touched a freed service: found by reading; without a sanitizer the
// old order may pass silently, under ASan this is the test that would report it).
TEST(ServerStop, AnswersQueuedCallsBeforeItsListenersGo) {
  ServerOptions options;
  options.models = {{"cnn", kCnn}};
  options.host = "127.0.0.1";
  options.http_port = -1;
  options.grpc_port = 0;
  options.model_defaults.batching.max_batch_size = 64;
  options.model_defaults.batching.batch_timeout_ms = 120000;
  options.model_defaults.batching.request_timeout_ms = 300000;
  auto server = Server::start(options);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  auto client = InferenceClient::create("grpc://127.0.0.1:" + std::to_string((*server)->grpc_port()));
  ASSERT_TRUE(client.ok());
  auto pending = (*client)->infer_async("cnn", {{"image", image(1, 0)}});
  auto model = (*server)->repository()->find("cnn");
  ASSERT_TRUE(model.ok());
  for (int i = 0; i < 500 && (*model)->batcher().stats().queued == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ((*model)->batcher().stats().queued, 1);
  (*server)->stop();
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_FALSE(pending.get().ok());
  server->reset();
}

}  // namespace
}  // namespace pyflame_rt::net
