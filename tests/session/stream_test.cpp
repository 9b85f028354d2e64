#include "session/stream.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>

namespace pyflame_rt {
namespace {

Shape shape(std::vector<Dim> dims) {
  Shape s;
  s.rank_known = true;
  s.dims = std::move(dims);
  return s;
}

std::shared_ptr<const InferenceSession> make_session(Graph g) {
  g.opset_imports[""] = 13;
  auto created = InferenceSession::create_from_graph(std::move(g));
  EXPECT_TRUE(created.ok()) << created.status().to_string();
  return std::shared_ptr<const InferenceSession>(std::move(created).value());
}

// y = 2x over x [1, time, 2]; s_out = s_in + sum of x over time: a running total as state.
std::shared_ptr<const InferenceSession> running_sum_model() {
  Graph g;
  g.inputs.push_back({"x", DType::kFloat32, shape({Dim(1), Dim(std::string("time")), Dim(2)})});
  g.inputs.push_back({"s_in", DType::kFloat32, shape({Dim(1), Dim(2)})});
  g.initializers["two"] = Tensor::scalar<float>(2.0f);
  g.initializers["axes"] = Tensor::from_vector<int64_t>({1}, {1});
  g.add_node("Mul", {"x", "two"}, {"y"});
  g.add_node("ReduceSum", {"x", "axes"}, {"chunk_sum"}).attributes["keepdims"] = Attribute::make_int(0);
  g.add_node("Add", {"s_in", "chunk_sum"}, {"s_out"});
  g.outputs.push_back({"y", DType::kFloat32, shape({Dim(1), Dim(std::string("time")), Dim(2)})});
  g.outputs.push_back({"s_out", DType::kFloat32, shape({Dim(1), Dim(2)})});
  return make_session(std::move(g));
}

// y = 2x over x [1, time]: a sequence-to-sequence model without state.
std::shared_ptr<const InferenceSession> doubling_model(Dim time) {
  Graph g;
  g.inputs.push_back({"x", DType::kFloat32, shape({Dim(1), time})});
  g.initializers["two"] = Tensor::scalar<float>(2.0f);
  g.add_node("Mul", {"x", "two"}, {"y"});
  g.outputs.push_back({"y", DType::kFloat32, shape({Dim(1), time})});
  return make_session(std::move(g));
}

Tensor ramp(int64_t start, int64_t n, int64_t features = 0) {
  Dims dims = features ? Dims{1, n, features} : Dims{1, n};
  std::vector<float> v(static_cast<size_t>(n * (features ? features : 1)));
  std::iota(v.begin(), v.end(), static_cast<float>(start));
  return Tensor::from_vector<float>(dims, v);
}

std::vector<float> values(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

TEST(StreamTest, StateIsCarriedAndChunkedRunsEqualOneWholeRun) {
  auto session = running_sum_model();
  Tensor whole = ramp(0, 12, 2);
  auto direct = session->run({}, {{"x", whole}, {"s_in", Tensor(DType::kFloat32, {1, 2})}});
  ASSERT_TRUE(direct.ok());
  for (int64_t chunk : {1, 3, 5, 12}) {
    auto stream = Stream::create(session, {});
    ASSERT_TRUE(stream.ok()) << stream.status().to_string();
    ASSERT_EQ((*stream)->state_pairs().size(), 1u);
    EXPECT_EQ((*stream)->state_pairs()[0].output, "s_out");
    std::vector<float> ys;
    Tensor last_state;
    for (int64_t t = 0; t < 12; t += chunk) {
      int64_t n = std::min<int64_t>(chunk, 12 - t);
      auto out = (*stream)->process(ramp(2 * t, n, 2));
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      auto y = values(out.value()[0]);
      ys.insert(ys.end(), y.begin(), y.end());
      last_state = out.value()[1];
    }
    EXPECT_EQ(ys, values(direct.value()[0])) << "chunk " << chunk;
    EXPECT_EQ(values(last_state), values(direct.value()[1])) << "chunk " << chunk;
  }
}

TEST(StreamTest, ResetStartsOverAndGivenStateIsUsed) {
  auto session = running_sum_model();
  StreamOptions o;
  o.initial_state["s_in"] = Tensor::from_vector<float>({1, 2}, {100, 200});
  auto stream = Stream::create(session, o);
  ASSERT_TRUE(stream.ok());
  auto a = (*stream)->process(ramp(0, 1, 2));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(values(a.value()[1]), (std::vector<float>{100, 201}));
  (*stream)->reset();
  auto b = (*stream)->process(ramp(0, 1, 2));
  EXPECT_EQ(values(b.value()[1]), (std::vector<float>{100, 201}));
}

TEST(StreamTest, WindowedOutputsDoNotCountTheOverlapTwice) {
  auto session = doubling_model(Dim(std::string("time")));
  StreamOptions o;
  o.chunk_size = 4;
  o.overlap = 1;
  auto stream = Stream::create(session, o);
  ASSERT_TRUE(stream.ok()) << stream.status().to_string();
  std::vector<float> ys;
  int64_t pos = 0;
  for (int64_t n : {3, 2, 7, 2}) {  // chunks smaller and larger than chunk_size
    auto out = (*stream)->process(ramp(pos, n));
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    pos += n;
    if (!out.value().empty()) {
      auto y = values(out.value()[0]);
      ys.insert(ys.end(), y.begin(), y.end());
    }
  }
  auto tail = (*stream)->flush();
  ASSERT_TRUE(tail.ok());
  ASSERT_FALSE(tail.value().empty());
  auto y = values(tail.value()[0]);
  ys.insert(ys.end(), y.begin(), y.end());
  std::vector<float> expected(static_cast<size_t>(pos));
  for (int64_t i = 0; i < pos; ++i) expected[i] = 2.0f * i;
  EXPECT_EQ(ys, expected);  // every sample exactly once, in order
}

TEST(StreamTest, FixedWindowModelPadsTheLastWindowAndTrimsThePadding) {
  auto session = doubling_model(Dim(8));
  StreamOptions o;
  o.overlap = 2;
  auto stream = Stream::create(session, o);
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ((*stream)->window(), 8);
  auto out = (*stream)->process(ramp(0, 11));  // one window [0, 8), then 6..10 buffered
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out.value()[0].dim(1), 8);
  auto tail = (*stream)->flush();
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(values(tail.value()[0]), (std::vector<float>{16, 18, 20}));  // samples 8..10 only
  StreamOptions wrong;
  wrong.chunk_size = 5;
  auto bad = Stream::create(session, wrong);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("fixed window of 8"), std::string::npos);
}

TEST(StreamTest, BadChunksNameTheStreamAndTheStreamCarriesOn) {
  auto session = running_sum_model();
  StreamOptions o;
  o.name = "mic-1";
  auto stream = Stream::create(session, o);
  ASSERT_TRUE(stream.ok());
  auto wrong_dtype = (*stream)->process(Tensor(DType::kFloat64, {1, 2, 2}));
  ASSERT_EQ(wrong_dtype.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_dtype.status().message().find("stream 'mic-1'"), std::string::npos);
  EXPECT_NE(wrong_dtype.status().message().find("got tensor(double)"), std::string::npos);
  auto wrong_rank = (*stream)->process(Tensor(DType::kFloat32, {1, 2}));
  EXPECT_NE(wrong_rank.status().message().find("expected rank 3"), std::string::npos);
  auto wrong_features = (*stream)->process(Tensor(DType::kFloat32, {1, 2, 3}));
  EXPECT_NE(wrong_features.status().message().find("dimension 2 must be 2"), std::string::npos);
  auto good = (*stream)->process(ramp(0, 2, 2));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(values(good.value()[1]), (std::vector<float>{2, 4}));
  (*stream)->close();
  auto closed = (*stream)->process(ramp(0, 2, 2));
  EXPECT_EQ(closed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(closed.status().message().find("after close"), std::string::npos);
}

TEST(StreamTest, BadStateAndOptionsAreRefused) {
  auto session = running_sum_model();
  StreamOptions o;
  o.initial_state["s_in"] = Tensor(DType::kFloat32, {1, 3});
  auto stream = Stream::create(session, o);
  ASSERT_TRUE(stream.ok());
  auto out = (*stream)->process(ramp(0, 2, 2));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("state 's_in'"), std::string::npos);
  StreamOptions overlap;
  overlap.chunk_size = 4;
  overlap.overlap = 4;
  EXPECT_EQ(Stream::create(session, overlap).status().code(), StatusCode::kInvalidArgument);
  StreamOptions unknown;
  unknown.state_map["s_in"] = "nope";
  EXPECT_FALSE(Stream::create(session, unknown).ok());
}

TEST(StreamTest, ConcurrentStreamsOnOneSessionKeepTheirOwnState) {
  auto session = running_sum_model();
  std::vector<std::vector<float>> finals(4);
  std::vector<std::thread> threads;
  for (int s = 0; s < 4; ++s) {
    threads.emplace_back([&, s] {
      auto stream = Stream::create(session, {});
      for (int i = 0; i < 50; ++i) {
        auto out = (*stream)->process(Tensor::from_vector<float>({1, 1, 2}, {float(s), 1}));
        if (out.ok()) finals[s] = values(out.value()[1]);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int s = 0; s < 4; ++s) EXPECT_EQ(finals[s], (std::vector<float>{50.0f * s, 50})) << "stream " << s;
}

}  // namespace
}  // namespace pyflame_rt
