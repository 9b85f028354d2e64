#include "net/sequence/sequence_table.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "session/stream.h"

namespace pyflame_rt::net {
namespace {

const std::string kGru = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_gru.onnx";
const std::string kCnn = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";

Tensor features(int64_t time, float seed) {
  Tensor t(DType::kFloat32, {1, time, 40});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = seed + 0.01f * static_cast<float>(i % 53);
  return t;
}

InferRequest gru_request(const std::string& id, Tensor x, bool start = false, bool end = false) {
  InferRequest r;
  r.model_name = "gru";
  r.id = "r";
  r.inputs.push_back({"features", std::move(x), {}});
  r.sequence = SequenceControl{id, start, end};
  return r;
}

Expected<InferResponse> infer_sync(SequenceTable& table, InferRequest request) {
  auto promise = std::make_shared<std::promise<Expected<InferResponse>>>();
  auto future = promise->get_future();
  table.infer(std::move(request), [promise](Expected<InferResponse> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    return make_status(StatusCode::kDeadlineExceeded, "test: no answer within 60 s");
  }
  return future.get();
}

// The reference: the same chunks through a session Stream in-process.
std::vector<std::vector<Tensor>> reference(const std::vector<Tensor>& chunks) {
  auto session = InferenceSession::create(kGru);
  EXPECT_TRUE(session.ok());
  auto stream = Stream::create(std::shared_ptr<const InferenceSession>(std::move(*session)));
  EXPECT_TRUE(stream.ok());
  std::vector<std::vector<Tensor>> out;
  for (const auto& c : chunks) out.push_back(*(*stream)->process(c));
  return out;
}

float max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dims(), b.dims());
  float d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  return d;
}

class SequenceTableTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(repo_.load("gru", kGru).ok()); }
  ModelRepository repo_;
};

TEST_F(SequenceTableTest, StateCarriesAcrossRequestsOfOneSequence) {
  SequenceTable table(repo_);
  std::vector<Tensor> chunks{features(5, 0.1f), features(3, -0.2f), features(4, 0.3f)};
  auto want = reference(chunks);
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto got = infer_sync(table, gru_request("s1", chunks[i]));
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_EQ(got->outputs.size(), 2u);
    EXPECT_EQ(got->outputs[0].name, "embedding");
    EXPECT_LT(max_diff(got->outputs[0].tensor, want[i][0]), 1e-5f) << "chunk " << i;
    EXPECT_EQ(std::get<std::string>(got->parameters.at("sequence_id")), "s1");
  }
  EXPECT_EQ(table.stats().active, 1u);
}

TEST_F(SequenceTableTest, StartResetsEndFreesAndSequencesAreIndependent) {
  SequenceTable table(repo_);
  Tensor a = features(4, 0.5f), b = features(4, -0.5f);
  auto first = reference({a});
  ASSERT_TRUE(infer_sync(table, gru_request("s1", b)).ok());
  // Another sequence does not see s1's state.
  auto other = infer_sync(table, gru_request("s2", a));
  ASSERT_TRUE(other.ok());
  EXPECT_LT(max_diff(other->outputs[0].tensor, first[0][0]), 1e-5f);
  // sequence_start on s1 forgets b.
  auto restarted = infer_sync(table, gru_request("s1", a, /*start=*/true));
  ASSERT_TRUE(restarted.ok());
  EXPECT_LT(max_diff(restarted->outputs[0].tensor, first[0][0]), 1e-5f);
  // sequence_end answers and frees.
  auto last = infer_sync(table, gru_request("s1", b, false, /*end=*/true));
  ASSERT_TRUE(last.ok()) << last.status().to_string();
  EXPECT_EQ(table.stats().ended, 1u);
  EXPECT_EQ(table.stats().active, 1u);  // s2 remains
  // Only the requested output comes back.
  auto req = gru_request("s2", a);
  req.outputs.push_back({"h_out", {}});
  auto only = infer_sync(table, std::move(req));
  ASSERT_TRUE(only.ok());
  ASSERT_EQ(only->outputs.size(), 1u);
  EXPECT_EQ(only->outputs[0].name, "h_out");
}

TEST_F(SequenceTableTest, IdleSequencesExpire) {
  SequenceOptions o;
  o.idle_timeout = std::chrono::milliseconds(30);
  SequenceTable table(repo_, o);
  ASSERT_TRUE(infer_sync(table, gru_request("s1", features(2, 0.f))).ok());
  // Bounded wait for the reaper (it runs every few ms); no timing is asserted.
  for (int i = 0; i < 500 && table.stats().expired == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(table.stats().expired, 1u);
  EXPECT_EQ(table.stats().active, 0u);
  EXPECT_EQ(repo_.metrics().events("sequences_expired"), 1u);
  // Its state is gone: a later request on it is refused, naming the timeout...
  auto late = infer_sync(table, gru_request("s1", features(2, 0.f)));
  ASSERT_EQ(late.status().code(), StatusCode::kDeadlineExceeded) << late.status().to_string();
  EXPECT_NE(late.status().message().find("sequence 's1' of model 'gru' was freed after 30 ms"), std::string::npos)
      << late.status().message();
  // ...until the client starts it again; an id never seen starts without sequence_start.
  EXPECT_TRUE(infer_sync(table, gru_request("s1", features(2, 0.f), /*start=*/true)).ok());
  EXPECT_TRUE(infer_sync(table, gru_request("s1", features(2, 0.f))).ok());
  EXPECT_TRUE(infer_sync(table, gru_request("fresh", features(2, 0.f))).ok());
}

TEST_F(SequenceTableTest, BadRequestsAreNamed) {
  SequenceTable table(repo_);
  auto unknown = gru_request("s", features(2, 0.f));
  unknown.model_name = "nope";
  EXPECT_EQ(infer_sync(table, std::move(unknown)).status().code(), StatusCode::kNotFound);

  auto wrong_name = gru_request("s", features(2, 0.f));
  wrong_name.inputs[0].name = "h";
  auto st = infer_sync(table, std::move(wrong_name)).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("expected one input 'features'"), std::string::npos) << st.message();

  auto wrong_output = gru_request("s", features(2, 0.f));
  wrong_output.outputs.push_back({"logits", {}});
  st = infer_sync(table, std::move(wrong_output)).status();
  EXPECT_NE(st.message().find("'logits' is not an output"), std::string::npos) << st.message();

  auto wrong_shape = gru_request("s", Tensor(DType::kFloat32, {1, 3, 7}));
  EXPECT_EQ(infer_sync(table, std::move(wrong_shape)).status().code(), StatusCode::kInvalidArgument);
  // The sequence still works after its errors.
  EXPECT_TRUE(infer_sync(table, gru_request("s", features(2, 0.f))).ok());
}

TEST_F(SequenceTableTest, BackToBackOneShotSequencesOnOneIdEachStartFresh) {
  // Requests with both sequence_start and sequence_end, submitted at once on one id (as a
  // client of one-shot sequences does): each is a sequence of its own. A request submitted
  // while the previous end had not run yet joined the ending sequence and was refused as
  // "already ended" (and the worker's write of `ended` raced with infer()'s read of it).
  SequenceTable table(repo_);
  Tensor x = features(4, 0.25f);
  auto want = reference({x});
  constexpr int kRequests = 40;
  std::vector<std::future<Expected<InferResponse>>> futures;
  for (int i = 0; i < kRequests; ++i) {
    auto p = std::make_shared<std::promise<Expected<InferResponse>>>();
    futures.push_back(p->get_future());
    table.infer(gru_request("once", x, /*start=*/true, /*end=*/true),
                [p](Expected<InferResponse> r) { p->set_value(std::move(r)); });
  }
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(futures[i].wait_for(std::chrono::seconds(60)), std::future_status::ready) << "request " << i;
    auto got = futures[i].get();
    ASSERT_TRUE(got.ok()) << "request " << i << ": " << got.status().to_string();
    ASSERT_EQ(got->outputs.size(), 2u);
    EXPECT_LT(max_diff(got->outputs[0].tensor, want[0][0]), 1e-5f) << "request " << i;
  }
  EXPECT_EQ(table.stats().ended, static_cast<uint64_t>(kRequests));
  EXPECT_EQ(table.stats().active, 0u);
}

TEST_F(SequenceTableTest, StopAnswersEveryone) {
  SequenceTable table(repo_);
  std::vector<std::future<Expected<InferResponse>>> futures;
  for (int i = 0; i < 20; ++i) {
    auto p = std::make_shared<std::promise<Expected<InferResponse>>>();
    futures.push_back(p->get_future());
    table.infer(gru_request("s" + std::to_string(i % 3), features(3, 0.f)),
                [p](Expected<InferResponse> r) { p->set_value(std::move(r)); });
  }
  table.stop();
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    auto r = f.get();
    EXPECT_TRUE(r.ok() || r.status().code() == StatusCode::kUnavailable) << r.status().to_string();
  }
}

}  // namespace
}  // namespace pyflame_rt::net
