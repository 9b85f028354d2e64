#include "net/model_repository.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "devices/run_interrupt.h"
#include "tests/common/counting_loop.h"

namespace pyflame_rt::net {
namespace {
namespace fs = std::filesystem;

const std::string kCnn = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";

// Submits and waits (bounded: a lost answer fails the test instead of hanging it).
Expected<InferResponse> infer_sync(ModelRepository& repo, InferRequest request) {
  auto promise = std::make_shared<std::promise<Expected<InferResponse>>>();
  auto future = promise->get_future();
  repo.infer(std::move(request), [promise](Expected<InferResponse> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    return make_status(StatusCode::kDeadlineExceeded, "test: no answer within 60 s");
  }
  return future.get();
}

Tensor image(int batch, float seed) {
  Tensor t(DType::kFloat32, {batch, 3, 32, 32});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = seed + 0.001f * static_cast<float>(i % 97);
  return t;
}

InferRequest cnn_request(Tensor x, std::string version = "") {
  InferRequest r;
  r.model_name = "cnn";
  r.model_version = std::move(version);
  r.id = "req-1";
  r.inputs.push_back({"image", std::move(x), {}});
  return r;
}

TEST(ModelRepository, ServesAModelFileWithTheSessionsOutputs) {
  ModelRepository repo;
  ASSERT_TRUE(repo.load("cnn", kCnn).ok());
  EXPECT_TRUE(repo.ready());
  EXPECT_TRUE(repo.model_ready("cnn"));
  EXPECT_TRUE(repo.model_ready("cnn", "1"));

  Tensor x = image(2, 0.5f);
  auto session = InferenceSession::create(kCnn);
  ASSERT_TRUE(session.ok());
  auto want = (*session)->run({}, {{"image", x}});
  ASSERT_TRUE(want.ok());

  auto got = infer_sync(repo, cnn_request(x));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->model_name, "cnn");
  EXPECT_EQ(got->model_version, "1");
  EXPECT_EQ(got->id, "req-1");
  ASSERT_EQ(got->outputs.size(), 1u);
  EXPECT_EQ(got->outputs[0].name, "probs");
  const Tensor& y = got->outputs[0].tensor;
  ASSERT_EQ(y.dims(), (Dims{2, 10}));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_NEAR(y.data<float>()[i], want.value()[0].data<float>()[i], 1e-6);

  auto& m = *repo.metrics().model("cnn", "1");
  EXPECT_EQ(m.successes(), 1u);
  EXPECT_EQ(m.inferences(), 2u);  // two rows
  EXPECT_EQ(m.executions(), 1u);
  EXPECT_EQ(m.in_flight(), 0);
}

TEST(ModelRepository, MetadataAndIndex) {
  ModelRepository repo;
  ASSERT_TRUE(repo.load("cnn", kCnn).ok());
  auto md = repo.metadata("cnn");
  ASSERT_TRUE(md.ok());
  EXPECT_EQ(md->versions, std::vector<std::string>{"1"});
  ASSERT_EQ(md->inputs.size(), 1u);
  EXPECT_EQ(md->inputs[0].name, "image");
  EXPECT_EQ(md->inputs[0].dtype, DType::kFloat32);
  EXPECT_FALSE(md->inputs[0].shape.dims[0].known());  // the batch dim
  EXPECT_EQ(md->outputs[0].name, "probs");
  auto index = repo.index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].name, "cnn");
  EXPECT_EQ(index[0].version, "1");
  EXPECT_EQ(index[0].state, ModelState::kReady);
}

TEST(ModelRepository, UnknownModelVersionOutputAndBadInputsAreRefusedAndCounted) {
  ModelRepository repo;
  ASSERT_TRUE(repo.load("cnn", kCnn).ok());

  InferRequest unknown = cnn_request(image(1, 0));
  unknown.model_name = "nope";
  auto a = infer_sync(repo, std::move(unknown));
  EXPECT_EQ(a.status().code(), StatusCode::kNotFound);
  EXPECT_NE(a.status().message().find("'nope'"), std::string::npos);
  EXPECT_EQ(repo.metrics().server_failures("not_found"), 1u);

  auto b = infer_sync(repo, cnn_request(image(1, 0), "7"));
  EXPECT_EQ(b.status().code(), StatusCode::kNotFound);
  EXPECT_NE(b.status().message().find("no version '7'"), std::string::npos);

  InferRequest out = cnn_request(image(1, 0));
  out.outputs.push_back({"logits", {}});
  auto c = infer_sync(repo, std::move(out));
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("unknown output 'logits'"), std::string::npos);

  InferRequest dtype = cnn_request(Tensor(DType::kInt64, {1, 3, 32, 32}));
  auto d = infer_sync(repo, std::move(dtype));
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);

  InferRequest shape = cnn_request(Tensor(DType::kFloat32, {1, 3, 16, 32}));
  auto e = infer_sync(repo, std::move(shape));
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);

  InferRequest twice = cnn_request(image(1, 0));
  twice.inputs.push_back({"image", image(1, 0), {}});
  EXPECT_EQ(infer_sync(repo, std::move(twice)).status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(repo.metrics().model("cnn", "1")->failures("invalid_argument"), 4u);
  EXPECT_EQ(repo.metrics().model("cnn", "1")->in_flight(), 0);
}

TEST(ModelRepository, RequestedOutputsComeBackInRequestOrder) {
  ModelRepository repo;
  ASSERT_TRUE(repo.load("gru", std::string(PFRT_EXAMPLE_MODELS) + "/tiny_gru.onnx").ok());
  InferRequest r;
  r.model_name = "gru";
  r.inputs.push_back({"features", Tensor(DType::kFloat32, {1, 5, 40}), {}});
  r.inputs.push_back({"h", Tensor(DType::kFloat32, {1, 1, 64}), {}});
  r.outputs.push_back({"h_out", {}});
  auto got = infer_sync(repo, std::move(r));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->outputs.size(), 1u);
  EXPECT_EQ(got->outputs[0].name, "h_out");
  EXPECT_EQ(got->outputs[0].tensor.dims(), (Dims{1, 1, 64}));
}

TEST(ModelRepository, UnloadAndReloadByName) {
  ModelRepository repo;
  ASSERT_TRUE(repo.load("cnn", kCnn).ok());
  ASSERT_TRUE(repo.unload("cnn").ok());
  EXPECT_FALSE(repo.model_ready("cnn"));
  EXPECT_TRUE(repo.ready());  // an unloaded model does not make the server unready
  EXPECT_EQ(infer_sync(repo, cnn_request(image(1, 0))).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(repo.unload("cnn").code(), StatusCode::kNotFound);
  auto index = repo.index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, ModelState::kUnavailable);
  EXPECT_EQ(index[0].reason, "unloaded");
  ASSERT_TRUE(repo.load("cnn").ok());  // from the path it was loaded from
  EXPECT_TRUE(infer_sync(repo, cnn_request(image(1, 0))).ok());
}

TEST(ModelRepository, FailedLoadIsUnavailableWithItsReason) {
  ModelRepository repo;
  Status st = repo.load("ghost", "/nonexistent/model.onnx");
  EXPECT_EQ(st.code(), StatusCode::kNoSuchFile);
  EXPECT_FALSE(repo.ready());
  auto index = repo.index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, ModelState::kUnavailable);
  EXPECT_NE(index[0].reason.find("/nonexistent/model.onnx"), std::string::npos);
  EXPECT_EQ(repo.load("never_seen").code(), StatusCode::kNotFound);
}

TEST(ModelRepository, DirectoryInTritonLayoutWithVersions) {
  fs::path dir = fs::temp_directory_path() / ("pfrt_repo_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "cnn" / "1");
  fs::create_directories(dir / "cnn" / "10");
  fs::copy_file(kCnn, dir / "cnn" / "1" / "model.onnx");
  fs::copy_file(kCnn, dir / "cnn" / "10" / "model.onnx");
  fs::copy_file(std::string(PFRT_EXAMPLE_MODELS) + "/tiny_gru.onnx", dir / "gru.onnx");
  ModelRepository repo;
  ASSERT_TRUE(repo.set_directory(dir.string()).ok());
  auto before = repo.index();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0].reason, "not loaded");
  ASSERT_TRUE(repo.load_directory().ok());
  auto md = repo.metadata("cnn");
  ASSERT_TRUE(md.ok());
  EXPECT_EQ(md->versions, (std::vector<std::string>{"1", "10"}));
  auto newest = infer_sync(repo, cnn_request(image(1, 0)));
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->model_version, "10");  // numerically newest, not "9" < "10" as text
  auto v1 = infer_sync(repo, cnn_request(image(1, 0), "1"));
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->model_version, "1");
  EXPECT_TRUE(repo.model_ready("gru"));
  fs::remove_all(dir);
}

// A model that blocks until released: fills the queue deterministically.
class GateTarget : public BatchTarget {
 public:
  const std::string& name() const override { return name_; }
  bool dynamic_batch() const override { return false; }
  const std::vector<std::string>& output_names() const override { return outputs_; }
  Status validate(const std::map<std::string, Tensor>&) const override { return Status::OK(); }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const override {
    std::unique_lock<std::mutex> lock(mu_);
    ++started_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return open_; });
    return std::vector<Tensor>{feeds.begin()->second};
  }
  bool wait_started(int n) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return started_ >= n; });
  }
  void open() const {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::string name_ = "gate";
  std::vector<std::string> outputs_{"y"};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int started_ = 0;
  mutable bool open_ = false;
};

TEST(ModelRepository, FullQueueIsResourceExhaustedAndNothingIsLost) {
  auto gate = std::make_shared<GateTarget>();
  ModelConfig cfg;
  cfg.batching.max_batch_size = 1;
  cfg.batching.max_queue_size = 1;
  cfg.batching.batch_timeout_ms = 0;
  ModelRepository repo;
  TensorInfo io{"x", DType::kFloat32, Shape::from_dims({1})};
  TensorInfo out{"y", DType::kFloat32, Shape::from_dims({1})};
  ASSERT_TRUE(repo.load("gate", gate, {io}, {out}, cfg).ok());

  auto make = [](float v) {
    InferRequest r;
    r.model_name = "gate";
    r.inputs.push_back({"x", Tensor::from_vector<float>({1}, {v}), {}});
    return r;
  };
  std::vector<std::future<Expected<InferResponse>>> answers;
  auto submit = [&](float v) {
    auto p = std::make_shared<std::promise<Expected<InferResponse>>>();
    answers.push_back(p->get_future());
    repo.infer(make(v), [p](Expected<InferResponse> r) { p->set_value(std::move(r)); });
  };
  submit(1);                            // runs (blocks in the gate)
  ASSERT_TRUE(gate->wait_started(1));
  submit(2);                            // waits in the queue
  submit(3);                            // the queue is full
  ASSERT_EQ(answers[2].wait_for(std::chrono::seconds(0)), std::future_status::ready);
  auto rejected = answers[2].get();
  EXPECT_EQ(rejected.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(http_status(rejected.status().code()), 503);
  gate->open();
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(answers[i].wait_for(std::chrono::seconds(60)), std::future_status::ready);
    auto r = answers[i].get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->outputs[0].tensor.data<float>()[0], float(i + 1));
  }
  auto m = repo.metrics().model("gate", "1");
  EXPECT_EQ(m->successes(), 2u);
  EXPECT_EQ(m->failures("queue_full"), 1u);
}

TEST(ModelRepository, HigherPriorityOvertakesTheDefaultLevel) {
  auto gate = std::make_shared<GateTarget>();
  ModelConfig cfg;
  cfg.batching.max_batch_size = 1;
  cfg.batching.batch_timeout_ms = 0;
  ModelRepository repo;
  TensorInfo io{"x", DType::kFloat32, Shape::from_dims({1})};
  ASSERT_TRUE(repo.load("gate", gate, {io}, {io}, cfg).ok());
  std::mutex mu;
  std::vector<float> order;
  std::vector<std::future<void>> done;
  auto submit = [&](float v, int64_t priority) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    InferRequest r;
    r.model_name = "gate";
    r.priority = priority;
    r.inputs.push_back({"x", Tensor::from_vector<float>({1}, {v}), {}});
    repo.infer(std::move(r), [&, p](Expected<InferResponse> resp) {
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(resp.ok() ? resp->outputs[0].tensor.data<float>()[0] : -1.f);
      }
      // Only after the unlock: once every future is ready the test returns and `mu` is gone
      // (ThreadSanitizer saw this thread unlock it after the next test reused its stack).
      p->set_value();
    });
  };
  submit(1, 0);
  ASSERT_TRUE(gate->wait_started(1));
  submit(2, 0);   // default level
  submit(3, 20);  // below the default
  submit(4, 1);   // the highest
  // The three enqueue messages reach the batching actor within microseconds; the pause only
  // makes sure they are all queued before the device actor asks for its next request.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  gate->open();
  for (auto& f : done) ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<float>{1, 4, 2, 3}));
}

// stop_runs() (the model server's stop, Server::stop and pyflame_rt.serving's ModelServer.stop)
// from another thread with a request running that would last hours (a Loop of 2^40
// iterations): the run ends at its next check through the repository's RunStopSource, its
// caller hears why, stop_runs() returns true within its grace, a run of the same session
// outside the repository goes on, and a request after it fails at once.
TEST(ModelRepository, StopRunsEndsTheRunsInFlightAndOnlyThose) {
  auto session = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  std::shared_ptr<const InferenceSession> shared(std::move(*session));
  ModelConfig cfg;
  cfg.batching.max_batch_size = 1;
  cfg.batching.batch_timeout_ms = 0;
  ModelRepository repo;
  ASSERT_TRUE(repo.load("loop", shared, cfg).ok());
  auto request = [](int64_t trips) {
    InferRequest r;
    r.model_name = "loop";
    for (auto& [name, t] : loop_feeds(trips)) r.inputs.push_back({name, t, {}});
    return r;
  };
  auto short_run = infer_sync(repo, request(3));
  ASSERT_TRUE(short_run.ok()) << short_run.status().to_string();
  EXPECT_EQ(short_run->outputs.at(0).tensor.data<float>()[0], 3.f);

  RunOptions local_ro;  // a run of this process outside the repository
  std::atomic<bool> local_done{false};
  std::thread local([&] {
    (void)shared->run({}, loop_feeds(int64_t{1} << 40), local_ro);
    local_done = true;
  });
  auto answer = std::async(std::launch::async, [&] { return infer_sync(repo, request(int64_t{1} << 40)); });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (repo.runs_in_progress() < 1 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool started = repo.runs_in_progress() == 1;
  bool ended = false;
  const auto stop_start = std::chrono::steady_clock::now();
  std::thread stopper([&] { ended = repo.stop_runs(std::chrono::milliseconds(10000)); });
  stopper.join();
  const auto stop_took = std::chrono::steady_clock::now() - stop_start;
  const bool answered = answer.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  EXPECT_FALSE(local_done) << "the run outside the repository stopped too";
  local_ro.terminate = true;
  local.join();
  ASSERT_TRUE(started) << "the request's run did not start within 60 s";
  EXPECT_TRUE(ended) << "a run was still in progress after stop_runs' grace";
  EXPECT_LT(stop_took, std::chrono::seconds(10));
  EXPECT_EQ(repo.runs_in_progress(), 0);
  ASSERT_TRUE(answered) << "the request got no answer within 60 s of stop_runs()";
  auto out = answer.get();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable) << out.status().to_string();
  EXPECT_NE(out.status().message().find("the run was stopped: the model server is shutting down"), std::string::npos)
      << out.status().to_string();
  auto later = infer_sync(repo, request(3));
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.status().code(), StatusCode::kUnavailable) << later.status().to_string();
}

}  // namespace
}  // namespace pyflame_rt::net

namespace pyflame_rt::net {
namespace {

TEST(ModelRepository, RequestTimeoutAnswersDeadlineExceededFromTheQueue) {
  auto gate = std::make_shared<GateTarget>();
  ModelConfig cfg;
  cfg.batching.max_batch_size = 1;
  cfg.batching.batch_timeout_ms = 0;
  ModelRepository repo;
  TensorInfo io{"x", DType::kFloat32, Shape::from_dims({1})};
  ASSERT_TRUE(repo.load("gate", gate, {io}, {io}, cfg).ok());
  std::vector<std::future<Expected<InferResponse>>> answers;
  auto submit = [&](int64_t timeout_us) {
    auto p = std::make_shared<std::promise<Expected<InferResponse>>>();
    answers.push_back(p->get_future());
    InferRequest r;
    r.model_name = "gate";
    r.timeout_us = timeout_us;
    r.inputs.push_back({"x", Tensor::from_vector<float>({1}, {1.f}), {}});
    repo.infer(std::move(r), [p](Expected<InferResponse> resp) { p->set_value(std::move(resp)); });
  };
  submit(0);
  ASSERT_TRUE(gate->wait_started(1));
  submit(1000);  // may wait 1 ms in the queue
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past its deadline (absolute)
  gate->open();
  for (auto& a : answers) ASSERT_EQ(a.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_TRUE(answers[0].get().ok());
  auto late = answers[1].get();
  EXPECT_EQ(late.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(http_status(late.status().code()), 504);
  EXPECT_EQ(repo.metrics().model("gate", "1")->failures("timeout"), 1u);
}

}  // namespace
}  // namespace pyflame_rt::net
