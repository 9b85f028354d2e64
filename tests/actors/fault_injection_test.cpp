// Fault injection (issue 14): a device actor that dies in the middle of a multi-request batch
// fails every request of that batch (and only those), is restarted, and the requests after it
// succeed; a kernel that cannot allocate fails its run with a clear error and leaves the
// session usable; a pipeline stage stuck in its function does not make stop() wait forever.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "actors/batcher.h"
#include "session/inference_session.h"
#include "actors/pipeline.h"

namespace pyflame_rt {
namespace {

using namespace std::chrono_literals;

// y = x + 1 over [rows, 1]; the call whose batch holds a row -1 throws (the device actor dies).
// The first call is held until released, so later requests queue up into one batch.
class DyingTarget : public BatchTarget {
 public:
  const std::string& name() const override { return name_; }
  bool dynamic_batch() const override { return true; }
  const std::vector<std::string>& output_names() const override { return outputs_; }
  Status validate(const std::map<std::string, Tensor>&) const override { return Status::OK(); }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const override {
    const Tensor& x = feeds.at("x");
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++calls_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
    }
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (x.data<float>()[i] == -1.0f) throw std::runtime_error("injected fault");
    }
    Tensor y(DType::kFloat32, x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = x.data<float>()[i] + 1;
    return std::vector<Tensor>{y};
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool wait_calls(int n) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return calls_ >= n; });
  }

 private:
  std::string name_ = "dying";
  std::vector<std::string> outputs_{"y"};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int calls_ = 0;
  bool released_ = false;
};

std::map<std::string, Tensor> row(float v) { return {{"x", Tensor::from_vector<float>({1, 1}, {v})}}; }

TEST(FaultInjectionTest, DeviceActorDyingMidBatchFailsThatBatchOnlyAndRestarts) {
  auto target = std::make_shared<DyingTarget>();
  BatchOptions o;
  o.max_batch_size = 4;
  o.batch_timeout_ms = 0;
  auto batcher = Batcher::create(target, o);
  ASSERT_TRUE(batcher.ok()) << batcher.status().to_string();
  // The first request's batch is held inside the device; the next four queue up and form
  // one batch, which holds the poisoned row.
  auto first = (*batcher)->submit(row(10));
  ASSERT_TRUE(target->wait_calls(1));
  std::vector<std::future<BatchResult>> doomed;
  for (float v : {1.0f, -1.0f, 2.0f, 3.0f}) doomed.push_back((*batcher)->submit(row(v)));
  target->release();
  BatchResult r = (*batcher)->wait(first);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value()[0].data<float>()[0], 11.0f);
  for (auto& f : doomed) {
    BatchResult d = (*batcher)->wait(f);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().to_string();
    EXPECT_NE(d.status().message().find("device actor failed"), std::string::npos) << d.status().message();
  }
  for (float v : {4.0f, 5.0f}) {
    BatchResult after = (*batcher)->run(row(v));
    ASSERT_TRUE(after.ok()) << after.status().to_string();
    EXPECT_EQ(after.value()[0].data<float>()[0], v + 1);
  }
  BatchStats s = (*batcher)->stats();
  EXPECT_EQ(s.device_restarts, 1u);
  EXPECT_EQ(s.failed, 4u);
}

TEST(FaultInjectionTest, KernelThatCannotAllocateFailsTheRunNotTheSession) {
  // ConstantOfShape with a 2^50-element shape: the kernel's allocation throws bad_alloc.
  Graph g;
  g.inputs.push_back({"shape", DType::kInt64, Shape::from_dims({1})});
  g.add_node("ConstantOfShape", {"shape"}, {"y"});
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
  g.opset_imports[""] = 13;
  auto session = InferenceSession::create_from_graph(g);
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  auto huge = (*session)->run({}, {{"shape", Tensor::from_vector<int64_t>({1}, {int64_t{1} << 50})}});
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kResourceExhausted) << huge.status().to_string();
  auto small = (*session)->run({}, {{"shape", Tensor::from_vector<int64_t>({1}, {3})}});
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ((*small)[0].dims(), (Dims{3}));
}

TEST(FaultInjectionTest, PipelineStopDoesNotWaitForeverOnAStuckStage) {
  auto gate = std::make_shared<std::promise<void>>();
  std::shared_future<void> opened = gate->get_future().share();
  auto entered = std::make_shared<std::atomic<bool>>(false);
  StageSpec stuck;
  stuck.name = "stuck";
  stuck.fn = [opened, entered](const Frame& f) -> Expected<Frame> {
    *entered = true;
    opened.wait_for(30s);  // stuck until the test lets it go
    return f;
  };
  auto pipeline = Pipeline::create({stuck});
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().to_string();
  ASSERT_TRUE((*pipeline)->push({{"x", Tensor::scalar<float>(1.0f)}}).ok());
  for (int i = 0; i < 1000 && !*entered; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(*entered);
  auto stopped = std::async(std::launch::async, [&] { return (*pipeline)->stop(200ms); });
  ASSERT_EQ(stopped.wait_for(20s), std::future_status::ready) << "stop() waited on the stuck stage";
  EXPECT_FALSE(stopped.get());  // the stage was abandoned
  pipeline->reset();  // destroyed while the stage is still inside its function
  gate->set_value();  // the stage returns into state the pipeline left alive for it
  std::this_thread::sleep_for(50ms);
}

}  // namespace
}  // namespace pyflame_rt
