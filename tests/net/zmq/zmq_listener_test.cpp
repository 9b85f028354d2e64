// The ZeroMQ listener end to end on 127.0.0.1: a PUSH producer and a SUB consumer (cppzmq).
#include "net/zmq/zmq_listener.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace pyflame_rt::net {
namespace {

using json = nlohmann::json;
const std::string kCnn = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";
const std::string kGru = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_gru.onnx";

std::string raw(const Tensor& t) { return std::string(static_cast<const char*>(t.raw_data()), t.nbytes()); }

Tensor image(float seed) {
  Tensor t(DType::kFloat32, {1, 3, 32, 32});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = seed + 0.001f * static_cast<float>(i % 89);
  return t;
}

Tensor features(float seed) {
  Tensor t(DType::kFloat32, {1, 2, 40});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = seed + 0.01f * static_cast<float>(i % 7);
  return t;
}

class ZmqListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(repo_.load("cnn", kCnn).ok());
    ASSERT_TRUE(repo_.load("gru", kGru).ok());
    sequences_ = std::make_unique<SequenceTable>(repo_);
    ZmqOptions o;
    o.pull_endpoint = "tcp://127.0.0.1:*";
    o.pub_endpoint = "tcp://127.0.0.1:*";
    auto l = ZmqListener::start(repo_, *sequences_, o);
    ASSERT_TRUE(l.ok()) << l.status().to_string();
    listener_ = std::move(*l);
    push_.connect(listener_->pull_endpoint());
    sub_.set(zmq::sockopt::subscribe, "");
    sub_.set(zmq::sockopt::rcvtimeo, 30000);  // every receive is bounded
    sub_.connect(listener_->pub_endpoint());
    // PUB drops until the subscription has arrived: send an error-producing probe until one
    // comes back (bounded), so no real message is lost to the slow joiner.
    sub_.set(zmq::sockopt::rcvtimeo, 50);
    for (int i = 0; i < 200; ++i) {
      push_.send(zmq::str_buffer("probe"), zmq::send_flags::none);
      std::vector<zmq::message_t> m;
      if (zmq::recv_multipart(sub_, std::back_inserter(m))) break;
    }
    drain();
    sub_.set(zmq::sockopt::rcvtimeo, 30000);
  }
  void TearDown() override {
    if (listener_) listener_->stop();
    sequences_->stop();
    repo_.stop();
  }
  void drain() {
    sub_.set(zmq::sockopt::rcvtimeo, 100);
    std::vector<zmq::message_t> m;
    while (zmq::recv_multipart(sub_, std::back_inserter(m))) m.clear();
  }
  void send(const json& header, const std::vector<std::string>& frames) {
    std::vector<zmq::const_buffer> parts{zmq::buffer(header.dump())};
    std::string h = header.dump();
    std::vector<zmq::message_t> msgs;
    msgs.emplace_back(h.data(), h.size());
    for (const auto& f : frames) msgs.emplace_back(f.data(), f.size());
    ASSERT_TRUE(zmq::send_multipart(push_, msgs));
  }
  // topic, header, raw frames
  std::tuple<std::string, json, std::vector<std::string>> receive() {
    std::vector<zmq::message_t> m;
    auto n = zmq::recv_multipart(sub_, std::back_inserter(m));
    EXPECT_TRUE(n.has_value()) << "no answer within 30 s";
    if (!n || m.size() < 2) return {};
    std::vector<std::string> frames;
    for (size_t i = 2; i < m.size(); ++i) frames.push_back(m[i].to_string());
    return {m[0].to_string(), json::parse(m[1].to_string()), frames};
  }

  ModelRepository repo_;
  std::unique_ptr<SequenceTable> sequences_;
  std::unique_ptr<ZmqListener> listener_;
  zmq::context_t ctx_;
  zmq::socket_t push_{ctx_, zmq::socket_type::push};
  zmq::socket_t sub_{ctx_, zmq::socket_type::sub};
};

TEST_F(ZmqListenerTest, StatelessRequestRoundTripsWithTheModelsAnswer) {
  Tensor x = image(0.3f);
  auto session = InferenceSession::create(kCnn);
  ASSERT_TRUE(session.ok());
  auto want = (*session)->run({}, {{"image", x}});
  send({{"model", "cnn"}, {"seq", 5}, {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {1, 3, 32, 32}}}}}},
       {raw(x)});
  auto [topic, header, frames] = receive();
  EXPECT_EQ(topic, "cnn");
  EXPECT_EQ(header["seq"], 5);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(header["outputs"][0]["name"], "probs");
  EXPECT_EQ(header["outputs"][0]["shape"], json({1, 10}));
  EXPECT_EQ(frames[0], raw((*want)[0]));
}

TEST_F(ZmqListenerTest, MalformedFramesAreAnsweredOnTheErrorTopicAndServingGoesOn) {
  const uint64_t before = listener_->stats().malformed;
  send({{"model", "cnn"}, {"seq", 1}, {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {1, 3, 32, 32}}}}}},
       {std::string(10, 'x')});
  auto [topic, header, frames] = receive();
  EXPECT_EQ(topic, "error");
  EXPECT_EQ(header["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(header["seq"], 1);
  EXPECT_NE(header["error"].get<std::string>().find("needs 12288 bytes, got 10"), std::string::npos) << header;

  send({{"model", "nope"}, {"seq", 2}, {"inputs", json::array()}}, {});
  auto [t2, h2, f2] = receive();
  EXPECT_EQ(t2, "error");
  EXPECT_EQ(h2["code"], "NOT_FOUND");
  EXPECT_EQ(listener_->stats().malformed, before + 1);
  EXPECT_GE(repo_.metrics().server_failures("zmq_malformed"), 1u);

  send({{"model", "cnn"}, {"seq", 3}, {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {1, 3, 32, 32}}}}}},
       {raw(image(0))});
  auto [t3, h3, f3] = receive();
  EXPECT_EQ(t3, "cnn");
  EXPECT_EQ(h3["seq"], 3);
}

TEST_F(ZmqListenerTest, StreamsKeepStateCountGapsAndRejectLateFrames) {
  auto header = [](int64_t seq) {
    return json{{"model", "gru"}, {"stream", "cam-1"}, {"seq", seq},
                {"inputs", {{{"name", "features"}, {"datatype", "FP32"}, {"shape", {1, 2, 40}}}}}};
  };
  send(header(0), {raw(features(0.1f))});
  auto [t0, h0, f0] = receive();
  EXPECT_EQ(t0, "cam-1");
  EXPECT_EQ(h0["seq"], 0);
  send(header(1), {raw(features(0.1f))});
  auto [t1, h1, f1] = receive();
  EXPECT_EQ(h1["seq"], 1);
  ASSERT_FALSE(f0.empty());
  ASSERT_FALSE(f1.empty());
  EXPECT_NE(f0[0], f1[0]);  // same input, carried state: a different embedding
  EXPECT_FALSE(h1.contains("gap"));

  send(header(4), {raw(features(0.1f))});  // 2 and 3 never came
  auto [t4, h4, f4] = receive();
  EXPECT_EQ(h4["seq"], 4);
  EXPECT_EQ(h4["gap"], 2);
  EXPECT_EQ(listener_->stats().gap_frames, 2u);
  EXPECT_EQ(repo_.metrics().events("zmq_gap_frames"), 2u);
  EXPECT_NE(repo_.metrics().render().find("pyflame_server_events_total{event=\"zmq_gap_frames\"} 2"),
            std::string::npos);

  send(header(3), {raw(features(0.1f))});  // late
  auto [t3, h3, f3] = receive();
  EXPECT_EQ(t3, "error");
  EXPECT_EQ(h3["code"], "ABORTED");
  EXPECT_EQ(h3["stream"], "cam-1");
  EXPECT_EQ(listener_->stats().out_of_order, 1u);
  EXPECT_EQ(repo_.metrics().server_failures("zmq_out_of_order"), 1u);

  // "start" begins afresh: the first answer again.
  json restart = header(0);
  restart["start"] = true;
  send(restart, {raw(features(0.1f))});
  auto [tr, hr, fr] = receive();
  ASSERT_FALSE(fr.empty());
  EXPECT_EQ(fr[0], f0[0]);
}

// SUB ingestion: the listener connects to a sensor's PUB socket; frame 0 is the topic (model).
TEST(ZmqSubscriber, ReadsFromAPublisherWithTheModelAsTopic) {
  ModelRepository repo;
  ASSERT_TRUE(repo.load("cnn", kCnn).ok());
  SequenceTable sequences(repo);
  zmq::context_t ctx;
  zmq::socket_t sensor(ctx, zmq::socket_type::pub);
  sensor.bind("tcp://127.0.0.1:*");
  ZmqOptions o;
  o.sub_endpoint = sensor.get(zmq::sockopt::last_endpoint);
  o.sub_topics = {"cnn"};
  o.pub_endpoint = "tcp://127.0.0.1:*";
  auto listener = ZmqListener::start(repo, sequences, o);
  ASSERT_TRUE(listener.ok()) << listener.status().to_string();
  zmq::socket_t answers(ctx, zmq::socket_type::sub);
  answers.set(zmq::sockopt::subscribe, "cnn");
  answers.set(zmq::sockopt::rcvtimeo, 50);
  answers.connect((*listener)->pub_endpoint());
  Tensor x = image(0.7f);
  const std::string header =
      json{{"model", "cnn"}, {"seq", 1}, {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {1, 3, 32, 32}}}}}}
          .dump();
  const std::string frame = raw(x);
  // Both subscriptions take a moment to propagate: publish until an answer arrives (bounded).
  std::vector<zmq::message_t> m;
  for (int i = 0; i < 400 && m.empty(); ++i) {
    sensor.send(zmq::str_buffer("cnn"), zmq::send_flags::sndmore);
    sensor.send(zmq::buffer(header), zmq::send_flags::sndmore);
    sensor.send(zmq::buffer(frame), zmq::send_flags::none);
    (void)zmq::recv_multipart(answers, std::back_inserter(m));
  }
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].to_string(), "cnn");
  auto session = InferenceSession::create(kCnn);
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(m[2].to_string(), raw((*(*session)->run({}, {{"image", x}}))[0]));
  (*listener)->stop();
  sequences.stop();
  repo.stop();
}

}  // namespace
}  // namespace pyflame_rt::net
