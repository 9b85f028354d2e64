// The C++ client over both transports against one net::Server (HTTP + gRPC) on 127.0.0.1.
#include "net/client/inference_client.h"

#include <gtest/gtest.h>

#include "net/client/http_client.h"
#include "net/server.h"

namespace pyflame_rt::net {
namespace {

const std::string kCnn = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";

Tensor image(int batch, float seed) {
  Tensor t(DType::kFloat32, {batch, 3, 32, 32});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = seed + 0.002f * static_cast<float>(i % 71);
  return t;
}

class InferenceClientTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.models = {{"cnn", kCnn}};
    o.host = "127.0.0.1";
    o.http_port = 0;
    o.grpc_port = 0;
    auto s = Server::start(o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    server_ = std::move(*s).release();
  }
  static void TearDownTestSuite() {
    server_->stop();
    delete server_;
  }
  std::string url() const {
    return GetParam() == "http" ? "http://127.0.0.1:" + std::to_string(server_->http_port())
                                : "grpc://127.0.0.1:" + std::to_string(server_->grpc_port());
  }
  static Server* server_;
};
Server* InferenceClientTest::server_ = nullptr;

TEST_P(InferenceClientTest, InferAsyncAndBatchEqualTheSession) {
  auto client = InferenceClient::create(url());
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  auto session = InferenceSession::create(kCnn);
  ASSERT_TRUE(session.ok());
  Tensor x = image(3, 0.2f);
  auto want = (*session)->run({}, {{"image", x}});
  auto got = (*client)->infer("cnn", {{"image", x}}, {"probs"});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  const Tensor& probs = got->at("probs");
  ASSERT_EQ(probs.dims(), (*want)[0].dims());
  for (int64_t i = 0; i < probs.numel(); ++i) EXPECT_NEAR(probs.data<float>()[i], (*want)[0].data<float>()[i], 1e-6);

  auto fut = (*client)->infer_async("cnn", {{"image", x}});
  auto later = fut.get();
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->at("probs").data<float>()[4], probs.data<float>()[4]);

  std::vector<TensorMap> feeds(5, TensorMap{{"image", image(1, 0.5f)}});
  for (auto& r : (*client)->infer_batch("cnn", feeds)) ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(*(*client)->live());
  EXPECT_TRUE(*(*client)->ready());
}

TEST_P(InferenceClientTest, ServerErrorsKeepTheirKind) {
  auto client = InferenceClient::create(url());
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->infer("nope", {{"image", image(1, 0)}}).status().code(), StatusCode::kNotFound);
  auto bad = (*client)->infer("cnn", {{"image", Tensor(DType::kFloat32, {1, 3, 31, 32})}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("image"), std::string::npos) << bad.status().message();
}

INSTANTIATE_TEST_SUITE_P(Transports, InferenceClientTest, ::testing::Values("http", "grpc"));

TEST(InferenceClient, RefusesBadUrlsAndReportsDeadServers) {
  EXPECT_EQ(InferenceClient::create("ftp://x:1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(InferenceClient::create("http://host:99999").status().code(), StatusCode::kInvalidArgument);
  // Nothing listens on port 1: an error, not a hang.
  ClientOptions o;
  o.timeout = std::chrono::milliseconds(2000);
  auto client = InferenceClient::create("http://127.0.0.1:1", o);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->live().status().code(), StatusCode::kUnavailable);
}

TEST(InferenceClient, BinaryRequestBodyRoundTrips) {
  size_t json_size = 0;
  Tensor x = Tensor::from_vector<int64_t>({2}, {3, -4});
  std::string body = encode_binary_infer_request({{"ids", x}}, {}, &json_size);
  EXPECT_EQ(body.size(), json_size + 16);
  EXPECT_NE(body.substr(0, json_size).find("\"binary_data_size\":16"), std::string::npos) << body.substr(0, json_size);
  std::string answer =
      R"({"outputs":[{"name":"y","datatype":"INT64","shape":[2],"parameters":{"binary_data_size":16}},)"
      R"({"name":"z","datatype":"FP32","shape":[1,2],"data":[[0.5,1.5]]}]})";
  const size_t n = answer.size();
  answer.append(body, json_size, 16);
  auto out = decode_infer_response(answer, n);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").data<int64_t>()[1], -4);
  EXPECT_EQ(out->at("z").data<float>()[1], 1.5f);
}

}  // namespace
}  // namespace pyflame_rt::net
