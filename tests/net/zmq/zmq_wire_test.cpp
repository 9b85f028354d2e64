#include "net/zmq/zmq_wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

namespace pyflame_rt::net {
namespace {

using json = nlohmann::json;

std::vector<FrameView> views(const std::vector<std::string>& frames) {
  std::vector<FrameView> v;
  for (const auto& f : frames) v.push_back({f.data(), f.size()});
  return v;
}

std::string floats(std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

TEST(ZmqWire, ParsesHeaderAndRawFrames) {
  json h = {{"model", "gru"}, {"stream", "cam-1"}, {"seq", 7}, {"start", true},
            {"inputs", {{{"name", "x"}, {"datatype", "FP32"}, {"shape", {1, 2}}}}}, {"outputs", {"y"}}};
  std::vector<std::string> frames{h.dump(), floats({1.5f, -2.0f})};
  ZmqErrorContext ctx;
  auto req = parse_zmq_request(views(frames), &ctx);
  ASSERT_TRUE(req.ok()) << req.status().to_string();
  EXPECT_EQ(req->request.model_name, "gru");
  EXPECT_EQ(req->stream, "cam-1");
  EXPECT_EQ(req->seq, 7);
  ASSERT_TRUE(req->request.sequence.has_value());
  EXPECT_EQ(req->request.sequence->id, "cam-1");
  EXPECT_TRUE(req->request.sequence->start);
  ASSERT_EQ(req->request.inputs.size(), 1u);
  EXPECT_EQ(req->request.inputs[0].tensor.data<float>()[1], -2.0f);
  ASSERT_EQ(req->request.outputs.size(), 1u);
  EXPECT_EQ(req->request.outputs[0].name, "y");
}

TEST(ZmqWire, MalformedMessagesAreNamedAndKeepWhatWasKnown) {
  ZmqErrorContext ctx;
  std::vector<std::string> not_json{"{nope", "x"};
  auto r = parse_zmq_request(views(not_json), &ctx);
  EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos);

  json h = {{"model", "cnn"}, {"seq", 3}, {"inputs", {{{"name", "x"}, {"datatype", "FP32"}, {"shape", {4}}}}}};
  std::vector<std::string> missing_frame{h.dump()};
  ctx = {};
  r = parse_zmq_request(views(missing_frame), &ctx);
  EXPECT_NE(r.status().message().find("2 frames were expected, got 1"), std::string::npos) << r.status().message();
  EXPECT_EQ(ctx.model, "cnn");
  EXPECT_EQ(ctx.seq, 3);

  std::vector<std::string> short_frame{h.dump(), floats({1, 2, 3})};
  r = parse_zmq_request(views(short_frame), &ctx);
  EXPECT_NE(r.status().message().find("needs 16 bytes, got 12"), std::string::npos) << r.status().message();

  json bad_seq = {{"model", "cnn"}, {"seq", "3"}, {"inputs", json::array()}};
  std::vector<std::string> f{bad_seq.dump()};
  EXPECT_NE(parse_zmq_request(views(f), &ctx).status().message().find("\"seq\" must be an integer"), std::string::npos);

  json bad_type = {{"model", "cnn"}, {"seq", 1}, {"inputs", {{{"name", "x"}, {"datatype", "F32"}, {"shape", {1}}}}}};
  std::vector<std::string> g{bad_type.dump(), floats({1})};
  EXPECT_EQ(parse_zmq_request(views(g), &ctx).status().code(), StatusCode::kInvalidArgument);

  std::vector<std::string> none;
  EXPECT_FALSE(parse_zmq_request(views(none), &ctx).ok());
}

TEST(ZmqWire, AnswersCarryTopicHeaderAndRawOutputs) {
  InferResponse resp;
  resp.model_name = "cnn";
  resp.outputs.push_back({"probs", Tensor::from_vector<float>({1, 2}, {0.25f, 0.75f}), {}});
  auto frames = encode_zmq_response(resp, "", 11);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], "cnn");  // no stream: the model name is the topic
  json h = json::parse(frames[1]);
  EXPECT_EQ(h["seq"], 11);
  EXPECT_EQ(h["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(h["outputs"][0]["shape"], json({1, 2}));
  EXPECT_FALSE(h.contains("gap"));
  float back[2];
  std::memcpy(back, frames[2].data(), 8);
  EXPECT_EQ(back[1], 0.75f);

  frames = encode_zmq_response(resp, "cam-2", 12, 3);
  EXPECT_EQ(frames[0], "cam-2");
  EXPECT_EQ(json::parse(frames[1])["gap"], 3);
}

TEST(ZmqWire, ErrorsGoToTheErrorTopicWithAGrpcCodeName) {
  ZmqErrorContext ctx{"cnn", "s", 4};
  auto frames = encode_zmq_error(ctx, Status(StatusCode::kNotFound, "model 'cnn' is not loaded"));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], "error");
  json h = json::parse(frames[1]);
  EXPECT_EQ(h["code"], "NOT_FOUND");
  EXPECT_EQ(h["seq"], 4);
  EXPECT_EQ(h["stream"], "s");
  EXPECT_EQ(json::parse(encode_zmq_error(ctx, invalid_argument("x"), "ABORTED")[1])["code"], "ABORTED");
  EXPECT_STREQ(zmq_error_code(Status(StatusCode::kResourceExhausted, "")), "RESOURCE_EXHAUSTED");
}

}  // namespace
}  // namespace pyflame_rt::net
