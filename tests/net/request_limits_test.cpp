// What a client's bytes cannot make the server do (issue 14): the decoders compare declared
// shapes with what was sent before allocating, bound nesting, and the HTTP routes are the
// ones the server answers. The decoding cases were found by reading the decoders while writing
// the net/ fuzz targets (fixed before the fuzzers first ran).
#include <gtest/gtest.h>

#include <string>

#include "net/http/http_routes.h"
#include "net/http/kserve_json.h"
#include "net/infer_types.h"
#include "net/zmq/zmq_wire.h"

namespace pyflame_rt::net {
namespace {

void expect_invalid(const Status& st, const std::string& fragment) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find(fragment), std::string::npos) << st.message();
}

TEST(RequestLimits, BinaryTensorShapeIsCheckedAgainstTheBytesBeforeAllocating) {
  // 2^40 floats announced, 4 bytes sent: an error, not a 4 TB allocation.
  auto t = tensor_from_bytes(DType::kFloat32, {1 << 20, 1 << 20}, "abcd", 4, "input 'x'");
  ASSERT_FALSE(t.ok());
  expect_invalid(t.status(), "input 'x': FP32[1048576,1048576] needs 4398046511104 bytes, got 4");
  // Overflowing products and BYTES counts beyond what the bytes can hold.
  auto big = tensor_from_bytes(DType::kFloat64, {int64_t{1} << 62, 4}, "", 0, "input 'y'");
  expect_invalid(big.status(), "needs more than 2^63 bytes, got 0");
  auto strings = tensor_from_bytes(DType::kString, {int64_t{1} << 40}, "\x01\0\0\0a", 5, "input 's'");
  expect_invalid(strings.status(), "1099511627776 BYTES elements need at least");
  auto ok = tensor_from_bytes(DType::kInt32, {2}, std::string("\x01\0\0\0\x02\0\0\0", 8).data(), 8, "input 'i'");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->data<int32_t>()[1], 2);
}

TEST(RequestLimits, JsonDataIsCountedBeforeTheShapeIsAllocated) {
  auto r = http::parse_infer_request(
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1099511627776],"data":[1]}]})", std::nullopt, "m", "");
  ASSERT_FALSE(r.ok());
  expect_invalid(r.status(), "shape [1099511627776] needs 1099511627776 elements, 'data' has 1");
  const std::string header =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1099511627776],"parameters":{"binary_data_size":4}}]})";
  auto binary = http::parse_infer_request(header + "abcd", header.size(), "m", "");
  ASSERT_FALSE(binary.ok());
  expect_invalid(binary.status(), "needs 4398046511104 bytes, got 4");
}

TEST(RequestLimits, DeeplyNestedDataIsRefused) {
  std::string data(100000, '[');
  data += "1" + std::string(100000, ']');
  auto r = http::parse_infer_request(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":)" + data + "}]}",
                                     std::nullopt, "m", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(RequestLimits, ZmqFramesAreCheckedAgainstTheHeaderShape) {
  std::string header = R"({"model":"m","seq":1,"inputs":[{"name":"x","datatype":"FP32","shape":[1073741824,1024]}]})";
  std::string frame = "abcd";
  ZmqErrorContext context;
  auto r = parse_zmq_request({{header.data(), header.size()}, {frame.data(), frame.size()}}, &context);
  ASSERT_FALSE(r.ok());
  expect_invalid(r.status(), "input 'x' (frame 1): FP32[1073741824,1024] needs 4398046511104 bytes, got 4");
  EXPECT_EQ(context.seq, 1);
}

TEST(HttpRoutes, MethodsAndTargets) {
  using http::HttpRoute;
  using http::route_request;
  auto m = route_request(false, true, "/v2/models/cnn/versions/2/infer?x=1");
  EXPECT_EQ(m.route, HttpRoute::kInfer);
  EXPECT_EQ(m.model, "cnn");
  EXPECT_EQ(m.version, "2");
  EXPECT_EQ(route_request(true, false, "/v2/models/cnn/infer").route, HttpRoute::kMethodNotAllowed);
  EXPECT_EQ(route_request(true, false, "/v2/models/cnn").route, HttpRoute::kModelMetadata);
  EXPECT_EQ(route_request(true, false, "/v2/models/cnn/ready").route, HttpRoute::kModelReady);
  EXPECT_EQ(route_request(true, false, "/v2/models/cnn/infer/more").route, HttpRoute::kNotFound);
  EXPECT_EQ(route_request(true, false, "/metrics").route, HttpRoute::kMetrics);
  EXPECT_EQ(route_request(false, true, "/metrics").route, HttpRoute::kMethodNotAllowed);
  EXPECT_EQ(route_request(true, false, "/v2//health//ready").route, HttpRoute::kHealthReady);
  EXPECT_EQ(route_request(true, false, "/v2/repository/index").route, HttpRoute::kMethodNotAllowed);
  auto load = route_request(false, true, "/v2/repository/models/gru/load");
  EXPECT_EQ(load.route, HttpRoute::kRepositoryLoad);
  EXPECT_EQ(load.model, "gru");
  EXPECT_EQ(route_request(false, false, "").route, HttpRoute::kNotFound);
  EXPECT_EQ(http::model_of_target("/v2/models/cnn/infer"), "cnn");
}

TEST(HttpRoutes, InferenceHeaderContentLength) {
  EXPECT_FALSE(http::json_length_header(std::nullopt)->has_value());
  EXPECT_EQ(http::json_length_header(std::string_view("42"))->value(), 42u);
  expect_invalid(http::json_length_header(std::string_view("4x")).status(), "'4x' is not a number");
  expect_invalid(http::json_length_header(std::string_view("")).status(), "is not a number");
  expect_invalid(http::json_length_header(std::string_view("99999999999999999999999")).status(), "is not a number");
}

}  // namespace
}  // namespace pyflame_rt::net
