#include "actors/pipeline.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

namespace pyflame_rt {
namespace {

using namespace std::chrono_literals;

float value_of(const Frame& f, const std::string& name) { return f.at(name).data<float>()[0]; }

// A stage that reads `in`, writes `out` = f(in), optionally after a pause.
StageSpec map_stage(std::string name, std::vector<std::string> after, std::string in, std::string out,
                    std::function<float(float)> f, std::chrono::milliseconds pause = 0ms) {
  StageSpec s;
  s.name = std::move(name);
  s.after = std::move(after);
  s.fn = [=](const Frame& frame) -> Expected<Frame> {
    if (pause.count()) std::this_thread::sleep_for(pause);
    float v = value_of(frame, in);
    if (v < 0) throw std::runtime_error("negative input");
    Frame next = frame;
    next[out] = Tensor::scalar<float>(f(v));
    return next;
  };
  return s;
}

Frame frame_of(float v) { return {{"x", Tensor::scalar<float>(v)}}; }

std::vector<PipelineResult> pull_all(Pipeline& p, size_t n) {
  std::vector<PipelineResult> out;
  while (out.size() < n) {
    auto r = p.pull(5000ms);
    if (!r.ok()) break;
    out.push_back(std::move(r).value());
  }
  return out;
}

TEST(PipelineTest, ChainRunsEveryFrameInOrder) {
  auto p = Pipeline::create({map_stage("a", {}, "x", "a", [](float v) { return v + 1; }),
                             map_stage("b", {"a"}, "a", "b", [](float v) { return v * 10; }),
                             map_stage("c", {"b"}, "b", "c", [](float v) { return v - 3; })});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*p)->push(frame_of(float(i))).ok());
  auto results = pull_all(**p, 20);
  ASSERT_EQ(results.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(results[i].ok());
    EXPECT_EQ(results[i].seq, uint64_t(i));
    EXPECT_EQ(value_of(results[i].frame, "c"), (i + 1) * 10.0f - 3);
  }
  auto m = (*p)->metrics();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1].name, "b");
  EXPECT_EQ(m[1].processed, 20u);
  EXPECT_GE(m[1].p99_us, m[1].p50_us);
}

TEST(PipelineTest, BranchesRunInParallelAndJoinBySequence) {
  auto p = Pipeline::create({map_stage("detect", {}, "x", "box", [](float v) { return v * 2; }),
                             map_stage("crop", {"detect"}, "box", "face", [](float v) { return v + 1; }),
                             map_stage("embed", {"crop"}, "face", "embedding", [](float v) { return v * 100; }),
                             map_stage("liveness", {"crop"}, "face", "live", [](float v) { return v > 5 ? 1.f : 0.f; }),
                             StageSpec{"join", {"embed", "liveness"}, nullptr}});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE((*p)->push(frame_of(float(i))).ok());
  auto results = pull_all(**p, 6);
  ASSERT_EQ(results.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status.to_string();
    EXPECT_EQ(value_of(results[i].frame, "embedding"), (2.0f * i + 1) * 100);
    EXPECT_EQ(value_of(results[i].frame, "live"), 2.0f * i + 1 > 5 ? 1.f : 0.f);
    EXPECT_EQ(value_of(results[i].frame, "x"), float(i));
  }
}

TEST(PipelineTest, AStageThatThrowsFailsThatFrameOnly) {
  auto p = Pipeline::create({map_stage("a", {}, "x", "a", [](float v) { return v; }),
                             map_stage("checker", {"a"}, "a", "b", [](float v) { return v; })});
  ASSERT_TRUE(p.ok());
  for (float v : {1.f, -1.f, 2.f}) ASSERT_TRUE((*p)->push(frame_of(v)).ok());
  auto results = pull_all(**p, 3);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].status.ok());
  EXPECT_NE(results[1].status.message().find("stage 'a'"), std::string::npos);  // a sees -1 first
  EXPECT_NE(results[1].status.message().find("negative input"), std::string::npos);
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ((*p)->metrics()[0].failed, 1u);
  EXPECT_EQ((*p)->metrics()[1].processed, 2u);  // the failed frame skipped stage 'checker'
}

void expect_every_frame_answered_or_dropped(DropPolicy policy) {
  StageSpec slow = map_stage("slow", {}, "x", "y", [](float v) { return v; }, 5ms);
  slow.capacity = 2;
  slow.policy = policy;
  auto p = Pipeline::create({slow});
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE((*p)->push(frame_of(float(i))).ok());
  (*p)->close();
  auto results = pull_all(**p, 30);
  ASSERT_EQ(results.size(), 30u);
  uint64_t dropped = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].seq, i);  // order kept, drops included as markers
    if (!results[i].dropped_at.empty()) {
      ++dropped;
      EXPECT_EQ(results[i].dropped_at, "slow");
    } else {
      EXPECT_EQ(value_of(results[i].frame, "y"), float(i));
    }
  }
  EXPECT_EQ(dropped, (*p)->metrics()[0].dropped);
  if (policy == DropPolicy::kBlock) {
    EXPECT_EQ(dropped, 0u);
  } else {
    EXPECT_GT(dropped, 0u);
  }
  if (policy == DropPolicy::kDropNewest) {
    EXPECT_TRUE(results[0].dropped_at.empty());  // the first is never the newest
  }
  if (policy == DropPolicy::kDropOldest) {
    EXPECT_TRUE(results[29].dropped_at.empty());  // the last is kept
  }
  auto after = (*p)->pull(100ms);
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable);
}

TEST(PipelineTest, BlockPolicyLosesNothing) { expect_every_frame_answered_or_dropped(DropPolicy::kBlock); }
TEST(PipelineTest, DropNewestCountsEveryDrop) { expect_every_frame_answered_or_dropped(DropPolicy::kDropNewest); }
TEST(PipelineTest, DropOldestCountsEveryDrop) { expect_every_frame_answered_or_dropped(DropPolicy::kDropOldest); }

TEST(PipelineTest, ABlockedPushGivesUpAtItsDeadlineAndTheFrameIsCountedDropped) {
  StageSpec slow = map_stage("slow", {}, "x", "y", [](float v) { return v; }, 100ms);
  slow.capacity = 1;
  auto p = Pipeline::create({slow});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->push(frame_of(0)).ok());  // taken by the stage
  std::this_thread::sleep_for(10ms);
  ASSERT_TRUE((*p)->push(frame_of(1)).ok());  // waits in the channel (capacity 1)
  auto late = (*p)->push(frame_of(2), 0, 20ms);
  ASSERT_EQ(late.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(late.status().message().find("stage 'slow'"), std::string::npos);
  auto results = pull_all(**p, 3);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_EQ(results[2].dropped_at, "slow");
  EXPECT_EQ((*p)->metrics()[0].dropped, 1u);
}

TEST(PipelineTest, SequenceNumbersArePerStream) {
  auto p = Pipeline::create({map_stage("a", {}, "x", "a", [](float v) { return v; })});
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ((*p)->push(frame_of(float(i)), 7).value(), uint64_t(i));
    ASSERT_EQ((*p)->push(frame_of(float(i)), 9).value(), uint64_t(i));
  }
  std::map<uint64_t, uint64_t> next;
  for (auto& r : pull_all(**p, 8)) EXPECT_EQ(r.seq, next[r.stream]++);
  EXPECT_EQ(next[7], 4u);
  EXPECT_EQ(next[9], 4u);
  (*p)->close();
  EXPECT_EQ((*p)->push(frame_of(1)).status().code(), StatusCode::kUnavailable);
}

TEST(PipelineTest, BadStageListsAreRefusedWithTheNames) {
  auto unknown = Pipeline::create({map_stage("a", {"ghost"}, "x", "a", [](float v) { return v; })});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'ghost'"), std::string::npos);
  auto twice = Pipeline::create({map_stage("a", {}, "x", "a", [](float v) { return v; }),
                                 map_stage("a", {"a"}, "x", "a", [](float v) { return v; })});
  EXPECT_NE(twice.status().message().find("used twice"), std::string::npos);
  auto two_sinks = Pipeline::create({map_stage("a", {}, "x", "a", [](float v) { return v; }),
                                     map_stage("b", {"a"}, "x", "b", [](float v) { return v; }),
                                     map_stage("c", {"a"}, "x", "c", [](float v) { return v; })});
  ASSERT_FALSE(two_sinks.ok());
  EXPECT_NE(two_sinks.status().message().find("'b', 'c'"), std::string::npos);
  EXPECT_FALSE(Pipeline::create({}).ok());
}

TEST(PipelineTest, ModelStageRunsASessionAndNamesAMissingInput) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({})});
  g.add_node("Neg", {"x"}, {"neg"});
  g.outputs.push_back({"neg", DType::kFloat32, Shape::from_dims({})});
  auto created = InferenceSession::create_from_graph(g);
  ASSERT_TRUE(created.ok());
  std::shared_ptr<const InferenceSession> session(std::move(created).value());
  auto p = Pipeline::create({model_stage("negate", session)});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->push(frame_of(4)).ok());
  ASSERT_TRUE((*p)->push({{"other", Tensor::scalar<float>(1)}}).ok());
  auto results = pull_all(**p, 2);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(value_of(results[0].frame, "neg"), -4.0f);
  EXPECT_NE(results[1].status.message().find("stage 'negate'"), std::string::npos);
  EXPECT_NE(results[1].status.message().find("model input 'x'"), std::string::npos);
  EXPECT_NE(results[1].status.message().find("'other'"), std::string::npos);
}

}  // namespace
}  // namespace pyflame_rt
