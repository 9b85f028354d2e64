#include "actors/batcher.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "actors/actor_runtime.h"
#include "actors/batch_runner.h"
#include "session/inference_session.h"

namespace pyflame_rt {
namespace {

Tensor rows_of(std::vector<float> values, int64_t rows) {
  return Tensor::from_vector<float>({rows, static_cast<int64_t>(values.size()) / rows}, values);
}

// A model stand-in: y = 2x, records every call, can be held closed, throws on x[0] == -1.
class FakeTarget : public BatchTarget {
 public:
  explicit FakeTarget(bool dynamic) : dynamic_(dynamic) {}
  const std::string& name() const override { return name_; }
  bool dynamic_batch() const override { return dynamic_; }
  const std::vector<std::string>& output_names() const override { return outputs_; }
  Status validate(const std::map<std::string, Tensor>& feeds) const override {
    auto it = feeds.find("x");
    if (it == feeds.end() || it->second.dtype() != DType::kFloat32 || it->second.rank() != 2) {
      return invalid_argument("input 'x': expected float32 rank 2");
    }
    return Status::OK();
  }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const override {
    const Tensor& x = feeds.at("x");
    {
      std::unique_lock<std::mutex> lock(mu_);
      calls_.push_back({x.dim(0), x.data<float>()[0]});
      gate_cv_.wait(lock, [&] { return open_; });
    }
    if (x.data<float>()[0] == -1.0f) throw std::runtime_error("poisoned input");
    Tensor y(DType::kFloat32, x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = 2 * x.data<float>()[i];
    return std::vector<Tensor>{y};
  }
  void set_open(bool open) {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = open;
    gate_cv_.notify_all();
  }
  // (rows, first value) of every call so far.
  std::vector<std::pair<int64_t, float>> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  size_t call_count() const { return calls().size(); }

 private:
  std::string name_ = "fake";
  std::vector<std::string> outputs_{"y"};
  bool dynamic_;
  mutable std::mutex mu_;
  mutable std::condition_variable gate_cv_;
  bool open_ = true;
  mutable std::vector<std::pair<int64_t, float>> calls_;
};

void wait_for_calls(const FakeTarget& t, size_t n) {
  for (int i = 0; i < 2000 && t.call_count() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// The batcher counts a restart when the dead device actor's down message arrives, which may be
// after the failed request was answered and later ones ran on the other device: wait (bounded).
uint64_t wait_for_restarts(Batcher& b, uint64_t n) {
  for (int i = 0; i < 2000 && b.stats().device_restarts < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return b.stats().device_restarts;
}

std::map<std::string, Tensor> feed_x(float v, int64_t rows = 1) {
  return {{"x", rows_of(std::vector<float>(static_cast<size_t>(rows * 3), v), rows)}};
}

TEST(BatchRunnerTest, ConcatAndSliceRowsRoundTrip) {
  Tensor a = rows_of({1, 2, 3, 4}, 2), b = rows_of({5, 6}, 1);
  Tensor c = concat_rows({&a, &b});
  ASSERT_EQ(c.dims(), (Dims{3, 2}));
  EXPECT_EQ(c.data<float>()[4], 5);
  Tensor s = slice_rows(c, 1, 2);
  ASSERT_EQ(s.dims(), (Dims{2, 2}));
  EXPECT_EQ(s.data<float>()[0], 3);
  EXPECT_EQ(s.data<float>()[3], 6);
}

TEST(BatchRunnerTest, DynamicBatchRunsOnceAndSplitsPerRequest) {
  FakeTarget target(true);
  std::vector<BatchRequestPtr> reqs;
  std::vector<std::future<BatchResult>> futures;
  for (int i = 0; i < 3; ++i) {
    reqs.push_back(std::make_shared<BatchRequest>(feed_x(float(i + 1), i + 1), std::vector<size_t>{}, 0,
                                                  BatchClock::time_point::max()));
    futures.push_back(reqs.back()->future());
  }
  BatchRunReport report = run_requests(target, reqs);
  EXPECT_EQ(report.model_runs, 1u);
  EXPECT_EQ(report.coalesced, 3u);
  ASSERT_EQ(target.calls().front().first, 6);  // 1 + 2 + 3 rows in one run
  for (int i = 0; i < 3; ++i) {
    BatchResult r = futures[i].get();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.value()[0].dim(0), i + 1);
    EXPECT_EQ(r.value()[0].data<float>()[0], 2.0f * (i + 1));
  }
}

TEST(BatchRunnerTest, FixedBatchRunsPerRequest) {
  FakeTarget target(false);
  std::vector<BatchRequestPtr> reqs;
  for (int i = 0; i < 3; ++i) {
    reqs.push_back(std::make_shared<BatchRequest>(feed_x(1), std::vector<size_t>{}, 0, BatchClock::time_point::max()));
  }
  EXPECT_EQ(run_requests(target, reqs).model_runs, 3u);
  for (auto& r : reqs) EXPECT_TRUE(r->answered());
}

TEST(BatcherTest, OptionsAreValidated) {
  BatchOptions o;
  o.max_batch_size = 4;
  o.preferred_batch_sizes = {8};
  Status st = o.validate();
  ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("preferred_batch_sizes"), std::string::npos);
  EXPECT_NE(st.message().find("got 8"), std::string::npos);
  o = BatchOptions();
  o.max_queue_size = 0;
  EXPECT_FALSE(Batcher::create(std::make_shared<FakeTarget>(true), o).ok());
}

// A real session: y = x * 3 with a dynamic batch dim.
std::shared_ptr<const InferenceSession> triple_session() {
  Graph g;
  g.opset_imports[""] = 13;
  Shape s;
  s.rank_known = true;
  s.dims = {Dim(std::string("N")), Dim(4)};
  g.inputs.push_back({"x", DType::kFloat32, s});
  g.initializers["three"] = Tensor::scalar<float>(3.0f);
  g.add_node("Mul", {"x", "three"}, {"y"});
  g.outputs.push_back({"y", DType::kFloat32, s});
  auto created = InferenceSession::create_from_graph(g);
  EXPECT_TRUE(created.ok()) << created.status().to_string();
  return std::shared_ptr<const InferenceSession>(std::move(created).value());
}

TEST(BatcherTest, ConcurrentRequestsAreCoalescedAndAnsweredWithTheirOwnRows) {
  BatchOptions o;
  o.max_batch_size = 8;
  o.batch_timeout_ms = 50;  // long enough that the 16 submits below meet in the queue
  auto batcher = Batcher::create(make_session_target(triple_session(), "triple"), o);
  ASSERT_TRUE(batcher.ok()) << batcher.status().to_string();
  std::vector<std::future<BatchResult>> futures;
  for (int i = 0; i < 16; ++i) {
    futures.push_back((*batcher)->submit({{"x", rows_of({float(i), 1, 2, 3}, 1)}}));
  }
  for (int i = 0; i < 16; ++i) {
    BatchResult r = (*batcher)->wait(futures[i]);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r.value()[0].dims(), (Dims{1, 4}));
    EXPECT_EQ(r.value()[0].data<float>()[0], 3.0f * i);
    EXPECT_EQ(r.value()[0].data<float>()[3], 9.0f);
  }
  BatchStats s = (*batcher)->stats();
  EXPECT_EQ(s.requests, 16u);
  EXPECT_EQ(s.batched_requests, 16u);
  EXPECT_LT(s.model_runs, 16u);
  EXPECT_GT(s.mean_batch_size(), 1.0);
  EXPECT_EQ(s.queued, 0);
}

TEST(BatcherTest, BadFeedIsRejectedAloneWithTheModelAndInputNamed) {
  auto batcher = Batcher::create(make_session_target(triple_session(), "triple"), {});
  ASSERT_TRUE(batcher.ok());
  BatchResult bad = (*batcher)->run({{"x", Tensor::from_vector<float>({1, 3}, {1, 2, 3})}});
  ASSERT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("model 'triple'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("input 'x'"), std::string::npos);
  BatchResult unknown = (*batcher)->run({{"x", rows_of({1, 2, 3, 4}, 1)}}, {"nope"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  BatchResult good = (*batcher)->run({{"x", rows_of({1, 2, 3, 4}, 1)}}, {"y"});
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value()[0].data<float>()[1], 6.0f);
  EXPECT_EQ((*batcher)->stats().rejected_invalid, 1u);
}

TEST(BatcherTest, FullQueueRejectsAtOnceAndNothingAcceptedIsLost) {
  auto target = std::make_shared<FakeTarget>(true);
  target->set_open(false);
  BatchOptions o;
  o.max_batch_size = 1;
  o.max_queue_size = 2;
  auto batcher = Batcher::create(target, o);
  ASSERT_TRUE(batcher.ok());
  auto running = (*batcher)->submit(feed_x(1));
  wait_for_calls(*target, 1);  // the first request is on the device, out of the queue
  auto q1 = (*batcher)->submit(feed_x(2));
  auto q2 = (*batcher)->submit(feed_x(3));
  BatchResult rejected = (*batcher)->run(feed_x(4));
  ASSERT_EQ(rejected.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(rejected.status().message().find("queue full"), std::string::npos);
  EXPECT_NE(rejected.status().message().find("max_queue_size=2"), std::string::npos);
  target->set_open(true);
  for (auto* f : {&running, &q1, &q2}) EXPECT_TRUE((*batcher)->wait(*f).ok());
  EXPECT_EQ((*batcher)->stats().rejected_queue_full, 1u);
}

TEST(BatcherTest, HigherPriorityRunsFirst) {
  auto target = std::make_shared<FakeTarget>(true);
  target->set_open(false);
  BatchOptions o;
  o.max_batch_size = 1;
  auto batcher = Batcher::create(target, o);
  ASSERT_TRUE(batcher.ok());
  auto first = (*batcher)->submit(feed_x(1));
  wait_for_calls(*target, 1);
  auto low = (*batcher)->submit(feed_x(2), {}, 0);
  auto high = (*batcher)->submit(feed_x(3), {}, 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both are queued
  target->set_open(true);
  for (auto* f : {&first, &low, &high}) ASSERT_TRUE((*batcher)->wait(*f).ok());
  auto calls = target->calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[1].second, 3.0f);
  EXPECT_EQ(calls[2].second, 2.0f);
}

TEST(BatcherTest, DeviceActorThatThrowsFailsItsBatchAndIsRestarted) {
  auto target = std::make_shared<FakeTarget>(true);
  BatchOptions o;
  o.max_batch_size = 1;
  auto batcher = Batcher::create(target, o);
  ASSERT_TRUE(batcher.ok());
  BatchResult poisoned = (*batcher)->run(feed_x(-1));
  ASSERT_EQ(poisoned.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(poisoned.status().message().find("model 'fake'"), std::string::npos);
  EXPECT_NE(poisoned.status().message().find("device actor failed"), std::string::npos);
  BatchResult after = (*batcher)->run(feed_x(5));
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(after.value()[0].data<float>()[0], 10.0f);
  EXPECT_EQ((*batcher)->stats().device_restarts, 1u);
}

TEST(BatcherTest, TwoDeviceActorsRunTwoBatchesAtOnceAndOneFailingLeavesTheOther) {
  auto target = std::make_shared<FakeTarget>(true);
  target->set_open(false);
  BatchOptions o;
  o.max_batch_size = 2;
  o.batch_timeout_ms = 0;
  o.device_actors = 2;
  auto batcher = Batcher::create(target, o);
  ASSERT_TRUE(batcher.ok());
  std::vector<std::future<BatchResult>> futures;
  for (float v : {1.0f, 2.0f}) futures.push_back((*batcher)->submit(feed_x(v)));
  wait_for_calls(*target, 1);
  for (float v : {3.0f, 4.0f}) futures.push_back((*batcher)->submit(feed_x(v)));
  // Both device actors are inside run() at once, each with its own batch.
  wait_for_calls(*target, 2);
  ASSERT_EQ(target->call_count(), 2u);
  target->set_open(true);
  for (size_t i = 0; i < futures.size(); ++i) {
    BatchResult r = (*batcher)->wait(futures[i]);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r.value()[0].data<float>()[0], 2.0f * float(i + 1));
  }
  BatchResult poisoned = (*batcher)->run(feed_x(-1));
  EXPECT_EQ(poisoned.status().code(), StatusCode::kUnavailable);
  for (float v : {5.0f, 6.0f, 7.0f}) {
    BatchResult r = (*batcher)->run(feed_x(v));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r.value()[0].data<float>()[0], 2 * v);
  }
  EXPECT_EQ(wait_for_restarts(**batcher, 1), 1u);
  BatchOptions bad;
  bad.device_actors = 0;
  auto refused = Batcher::create(target, bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("device_actors: expected 1..64, got 0"), std::string::npos);
}

TEST(BatcherTest, EveryWaitHasADeadline) {
  auto target = std::make_shared<FakeTarget>(true);
  target->set_open(false);
  BatchOptions o;
  o.request_timeout_ms = 50;
  auto batcher = Batcher::create(target, o);
  ASSERT_TRUE(batcher.ok());
  BatchResult r = (*batcher)->run(feed_x(1));
  ASSERT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("request_timeout_ms=50"), std::string::npos);
  target->set_open(true);
}

TEST(BatcherTest, StopAnswersWhatIsQueued) {
  auto target = std::make_shared<FakeTarget>(true);
  target->set_open(false);
  BatchOptions o;
  o.max_batch_size = 1;
  auto batcher = Batcher::create(target, o);
  ASSERT_TRUE(batcher.ok());
  auto running = (*batcher)->submit(feed_x(1));
  wait_for_calls(*target, 1);
  auto queued = (*batcher)->submit(feed_x(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  (*batcher)->stop();
  BatchResult q = (*batcher)->wait(queued);
  ASSERT_EQ(q.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(q.status().message().find("stopped"), std::string::npos);
  target->set_open(true);
  EXPECT_TRUE((*batcher)->wait(running).ok());  // already on the device: it finishes
  BatchResult late = (*batcher)->run(feed_x(3));
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
}

TEST(ActorRuntimeTest, ShutdownStopsBatchersAndTheRuntimeRestarts) {
  auto batcher = Batcher::create(std::make_shared<FakeTarget>(true), {});
  ASSERT_TRUE(batcher.ok());
  ASSERT_TRUE((*batcher)->run(feed_x(1)).ok());
  EXPECT_GT(actor_runtime_threads(), 0);
  shutdown_actor_runtime();
  EXPECT_EQ(actor_runtime_threads(), 0);
  EXPECT_EQ((*batcher)->run(feed_x(1)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(configure_actor_runtime(-1).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(configure_actor_runtime(2).ok());
  auto again = Batcher::create(std::make_shared<FakeTarget>(true), {});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->run(feed_x(1)).ok());
  EXPECT_EQ(actor_runtime_threads(), 2);
}

}  // namespace
}  // namespace pyflame_rt
