#include "net/pipeline_target.h"

#include <gtest/gtest.h>

#include <future>

#include "net/model_repository.h"

namespace pyflame_rt::net {
namespace {

const std::string kCnn = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";

Tensor image(float seed) {
  Tensor t(DType::kFloat32, {1, 3, 32, 32});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = seed + 0.001f * static_cast<float>(i % 89);
  return t;
}

// cnn -> "double" (probs * 2): served as one model, several requests in flight at once.
TEST(PipelineTarget, APipelineIsServedLikeAModel) {
  auto session = InferenceSession::create(kCnn);
  ASSERT_TRUE(session.ok());
  std::shared_ptr<const InferenceSession> cnn = std::move(session).value();
  StageFn twice = [](const Frame& f) -> Expected<Frame> {
    Frame out = f;
    Tensor y = f.at("probs").clone();
    for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] *= 2;
    out["probs2"] = y;
    return out;
  };
  auto created = Pipeline::create({model_stage("cnn", cnn), {"double", {"cnn"}, twice}});
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  std::shared_ptr<Pipeline> pipeline = std::move(created).value();
  std::vector<TensorInfo> inputs = cnn->inputs();
  std::vector<TensorInfo> outputs{{"probs2", DType::kFloat32, Shape({Dim(std::string("batch")), Dim(10)})}};

  ModelConfig cfg;
  cfg.batching.device_actors = 3;  // three frames in the pipeline at once
  ModelRepository repo;
  ASSERT_TRUE(repo.load("chain", make_pipeline_target("chain", pipeline, inputs, outputs), inputs, outputs, cfg).ok());

  std::vector<std::future<Expected<InferResponse>>> answers;
  std::vector<Tensor> xs;
  for (int i = 0; i < 12; ++i) {
    xs.push_back(image(0.1f * static_cast<float>(i)));
    InferRequest r;
    r.model_name = "chain";
    r.inputs.push_back({"image", xs.back(), {}});
    auto p = std::make_shared<std::promise<Expected<InferResponse>>>();
    answers.push_back(p->get_future());
    repo.infer(std::move(r), [p](Expected<InferResponse> resp) { p->set_value(std::move(resp)); });
  }
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_EQ(answers[i].wait_for(std::chrono::seconds(60)), std::future_status::ready);
    auto got = answers[i].get();
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_EQ(got->outputs.size(), 1u);
    EXPECT_EQ(got->outputs[0].name, "probs2");
    auto want = cnn->run({}, {{"image", xs[i]}});
    ASSERT_TRUE(want.ok());
    for (int k = 0; k < 10; ++k) {
      EXPECT_NEAR(got->outputs[0].tensor.data<float>()[k], 2 * want.value()[0].data<float>()[k], 1e-6) << i;
    }
  }

  InferRequest bad;
  bad.model_name = "chain";
  bad.inputs.push_back({"pixels", image(0), {}});
  auto p = std::make_shared<std::promise<Expected<InferResponse>>>();
  auto f = p->get_future();
  repo.infer(std::move(bad), [p](Expected<InferResponse> resp) { p->set_value(std::move(resp)); });
  ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(f.get().status().code(), StatusCode::kInvalidArgument);
  repo.stop();
  pipeline->stop();
}

}  // namespace
}  // namespace pyflame_rt::net
