// A model split into partitions, one stage actor each, computes what the whole model does.
#include "actors/partitioned_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "actors/compiler_actor.h"
#include "graph/model_loader.h"

namespace pyflame_rt {
namespace {

using namespace std::chrono_literals;

Tensor image(float seed) {
  Tensor t(DType::kFloat32, {2, 3, 32, 32});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::cos(seed + 0.013f * float(i));
  return t;
}

TEST(PartitionedModelTest, EachPartitionCountGivesTheWholeModelsOutputs) {
  auto graph = load_model_file(std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx");
  ASSERT_TRUE(graph.ok()) << graph.status().to_string();
  auto whole = InferenceSession::create_from_graph(*graph);
  ASSERT_TRUE(whole.ok());
  for (int count : {1, 2, 3, 5}) {
    std::vector<PartitionInfo> info;
    auto stages = partition_stages(*graph, count, {}, &info);
    ASSERT_TRUE(stages.ok()) << stages.status().to_string();
    ASSERT_EQ(stages->size(), info.size());
    EXPECT_EQ(static_cast<int>(info.size()), count) << "tiny_cnn has enough typed cut points";
    double share = 0;
    for (const auto& p : info) share += p.cost_share;
    EXPECT_NEAR(share, 1.0, 1e-9);
    auto pipeline = Pipeline::create(std::move(stages).value());
    ASSERT_TRUE(pipeline.ok()) << pipeline.status().to_string();
    for (int f = 0; f < 4; ++f) ASSERT_TRUE((*pipeline)->push({{"image", image(float(f))}}).ok());
    for (int f = 0; f < 4; ++f) {
      auto r = (*pipeline)->pull(10000ms);
      ASSERT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->status.to_string() : r.status().to_string());
      ASSERT_EQ(r->frame.size(), 1u) << "only the model's outputs reach the caller";
      const Tensor& got = r->frame.at("probs");
      auto want = (*whole)->run({}, {{"image", image(float(f))}});
      ASSERT_TRUE(want.ok());
      ASSERT_EQ(got.dims(), (*want)[0].dims());
      for (int64_t i = 0; i < got.numel(); ++i) {
        EXPECT_NEAR(got.data<float>()[i], (*want)[0].data<float>()[i], 1e-5f) << count << " partitions, element " << i;
      }
    }
  }
}

TEST(PartitionedModelTest, BadInputFailsTheFrameNamingThePartition) {
  auto graph = load_model_file(std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx");
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ(partition_stages(*graph, 0, {}).status().code(), StatusCode::kInvalidArgument);
  auto stages = partition_stages(*graph, 2, {});
  ASSERT_TRUE(stages.ok());
  auto pipeline = Pipeline::create(std::move(stages).value());
  ASSERT_TRUE(pipeline.ok());
  ASSERT_TRUE((*pipeline)->push({{"image", Tensor(DType::kFloat32, {1, 3, 8, 8})}}).ok());
  ASSERT_TRUE((*pipeline)->push({{"image", image(1)}}).ok());
  auto bad = (*pipeline)->pull(10000ms);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad->status.message().find("stage 'p0'"), std::string::npos) << bad->status.message();
  auto good = (*pipeline)->pull(10000ms);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->ok()) << good->status.to_string();
}

// Constant folding of a partitioned model stays within the session's memory_limit_mb and
// run_timeout_ms (FoldLimits), as a session's creation does: partition_stages folded at the
// fold's own bounds (256 MB, 5 s) whatever the options said.
TEST(PartitionedModelTest, FoldingStaysWithinTheSessionsMemoryLimitAndDeadline) {
  auto nodes_in = [](const std::vector<PartitionInfo>& info) {
    size_t n = 0;
    for (const auto& p : info) n += p.nodes;
    return n;
  };
  {  // memory_limit_mb 1: the Expand to 2 MB (and what reads it) is left to the run
    Graph g;
    g.opset_imports[""] = 17;
    g.initializers["one"] = Tensor::from_vector<float>({1}, {1.5f});
    g.initializers["shape"] = Tensor::from_vector<int64_t>({2}, {512, 1024});
    g.add_node("Expand", {"one", "shape"}, {"wide"});
    g.add_node("ReduceMax", {"wide"}, {"m"}).attributes["keepdims"] = Attribute::make_int(0);
    g.add_node("Add", {"x", "m"}, {"y"});
    g.inputs = {{"x", DType::kFloat32, Shape::from_dims({1})}};
    g.outputs = {{"y", DType::kFloat32, Shape::from_dims({1})}};
    SessionOptions limited;
    limited.memory_limit_mb = 1;
    std::vector<PartitionInfo> info;
    auto stages = partition_stages(g, 2, limited, &info);
    ASSERT_TRUE(stages.ok()) << stages.status().to_string();
    EXPECT_EQ(nodes_in(info), 3u) << "the 2 MB Expand was folded past memory_limit_mb 1";
    std::vector<PartitionInfo> unlimited_info;
    ASSERT_TRUE(partition_stages(g, 2, {}, &unlimited_info).ok());
    EXPECT_EQ(nodes_in(unlimited_info), 1u) << "without a limit the constant part folds (Add stays)";
  }
  {  // run_timeout_ms 50: a Resize of 16 M outputs (seconds on the reference) is given up at 50 ms
    Graph g;
    g.opset_imports[""] = 17;
    g.initializers["img"] = Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
    g.initializers["roi"] = Tensor::from_vector<float>({0}, {});
    g.initializers["scales"] = Tensor::from_vector<float>({4}, {1, 1, 2048, 2048});
    g.add_node("Resize", {"img", "roi", "scales"}, {"big"}).attributes["mode"] = Attribute::make_string("linear");
    g.add_node("ReduceMax", {"big"}, {"m"}).attributes["keepdims"] = Attribute::make_int(0);
    g.add_node("Add", {"x", "m"}, {"y"});
    g.inputs = {{"x", DType::kFloat32, Shape::from_dims({1})}};
    g.outputs = {{"y", DType::kFloat32, Shape::from_dims({1})}};
    SessionOptions limited;
    limited.run_timeout_ms = 50;
    std::vector<PartitionInfo> info;
    const auto start = std::chrono::steady_clock::now();
    auto stages = partition_stages(g, 2, limited, &info);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(stages.ok()) << stages.status().to_string();
    EXPECT_EQ(nodes_in(info), 3u) << "the Resize was folded past run_timeout_ms 50";
    EXPECT_LT(seconds, 1.5) << "folding passed the session's 50 ms deadline by far";
  }
}

TEST(PartitionedModelTest, TheCompilerActorSplitsAndCompilesOffTheCallersThread) {
  const std::string path = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";
  std::future<Expected<PartitionedModel>> f = partition_model_async(path, false, 2);
  Expected<PartitionedModel> split = f.get();
  ASSERT_TRUE(split.ok()) << split.status().to_string();
  ASSERT_EQ(split->stages.size(), 2u);
  ASSERT_EQ(split->partitions.size(), 2u);
  EXPECT_EQ(split->partitions[0].inputs, std::vector<std::string>{"image"});
  EXPECT_EQ(split->partitions[1].outputs, std::vector<std::string>{"probs"});
  auto missing = partition_model_async("/no/such/model.onnx", false, 2).get();
  EXPECT_EQ(missing.status().code(), StatusCode::kNoSuchFile) << missing.status().to_string();
}

}  // namespace
}  // namespace pyflame_rt
