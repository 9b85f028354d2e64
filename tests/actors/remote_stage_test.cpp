// Scale-out: a model served by another process (the pyflame-rt CLI) used as a pipeline stage
// and as a batcher's device over loopback; a server that disappears and comes back.
#include "actors/remote_stage.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <thread>

#include "actors/batcher.h"
#include "devices/run_interrupt.h"
#include "graph/onnx_export.h"
#include "tests/common/counting_loop.h"

namespace pyflame_rt {
namespace {

using namespace std::chrono_literals;

const std::string kModel = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";

// `pyflame-rt serve` in a child process; learns the port from the line the server prints.
class ServerProcess {
 public:
  explicit ServerProcess(uint16_t port = 0, const std::string& model = kModel) {
    int fds[2];
    if (pipe(fds) != 0) return;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Dies with the test process: a test that aborts (a sanitizer's report) must not leave
      // a server holding ctest's output pipe, which made ctest wait for it forever.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      std::string port_text = std::to_string(port);
      execl(PFRT_CLI, PFRT_CLI, "serve", model.c_str(), "--port", port_text.c_str(), "--threads", "1",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    FILE* out = fdopen(fds[0], "r");
    char line[512] = {0};
    if (out && fgets(line, sizeof line, out)) {
      std::string text = line;
      size_t colon = text.rfind(':');
      if (text.rfind("serving stage", 0) == 0 && colon != std::string::npos) port_ = std::stoi(text.substr(colon + 1));
    }
    // Kept open until the child is gone: it prints again when it stops ("stopping after N
    // frames"), and a closed pipe would end it with SIGPIPE instead of its own exit status.
    out_ = out;
  }
  ~ServerProcess() { kill_now(); }
  uint16_t port() const { return port_; }
  // SIGTERM, then its exit status (-1: still running after `limit`, then killed).
  int terminate(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) return -1;  // the destructor kills it
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    close_output();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void kill_now() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    close_output();
  }

 private:
  void close_output() {
    if (out_) fclose(out_);
    out_ = nullptr;
  }
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  FILE* out_ = nullptr;
};

std::shared_ptr<const InferenceSession> local_cnn() {
  SessionOptions opts;
  opts.num_threads = 1;
  auto s = InferenceSession::create(kModel, opts);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return std::shared_ptr<const InferenceSession>(std::move(s).value());
}

Tensor image(float seed, int64_t batch = 1) {
  Tensor t(DType::kFloat32, {batch, 3, 32, 32});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std::sin(seed + 0.01f * float(i));
  return t;
}

void expect_close(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.dims(), want.dims());
  for (int64_t i = 0; i < want.numel(); ++i) {
    EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-5f) << "element " << i;
  }
}

TEST(RemoteStageTest, PipelineStageInAnotherProcessMatchesLocalRun) {
  ServerProcess server;
  ASSERT_NE(server.port(), 0) << "the server did not start";
  auto remote = remote_stage("classify", "127.0.0.1", server.port(), {});
  ASSERT_TRUE(remote.ok()) << remote.status().to_string();
  StageSpec tag{"tag", {"classify"}, [](const Frame& f) -> Expected<Frame> {
                  Frame out = f;
                  out["tagged"] = Tensor::scalar<float>(1.0f);
                  return out;
                }};
  auto p = Pipeline::create({*remote, tag});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  auto local = local_cnn();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE((*p)->push({{"image", image(float(i))}, {"camera", Tensor::scalar<int64_t>(7)}}).ok());
  }
  for (int i = 0; i < 8; ++i) {
    auto r = (*p)->pull(10000ms);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_TRUE(r->ok()) << r->status.to_string();
    auto want = local->run({}, {{"image", image(float(i))}});
    ASSERT_TRUE(want.ok());
    expect_close(r->frame.at("probs"), (*want)[0]);
    // Entries the model does not read stay here and come out untouched.
    EXPECT_EQ(r->frame.at("camera").data<int64_t>()[0], 7);
    EXPECT_EQ(r->frame.count("tagged"), 1u);
  }
}

TEST(RemoteStageTest, BatcherRunsOnARemoteDevice) {
  ServerProcess server;
  ASSERT_NE(server.port(), 0);
  auto remote = RemoteStage::connect("127.0.0.1", server.port());
  ASSERT_TRUE(remote.ok()) << remote.status().to_string();
  EXPECT_EQ((*remote)->name(), "tiny_cnn");
  EXPECT_EQ((*remote)->inputs(), std::vector<std::string>{"image"});
  EXPECT_EQ((*remote)->outputs(), std::vector<std::string>{"probs"});
  EXPECT_TRUE((*remote)->dynamic_batch());
  BatchOptions opts;
  opts.max_batch_size = 8;
  opts.batch_timeout_ms = 5;
  auto batcher = Batcher::create(make_remote_target(*remote), opts);
  ASSERT_TRUE(batcher.ok()) << batcher.status().to_string();
  auto local = local_cnn();
  std::vector<std::thread> clients;
  std::vector<int> good(6, 0);
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      for (int k = 0; k < 5; ++k) {
        float seed = float(c * 10 + k);
        auto got = (*batcher)->run({{"image", image(seed)}});
        auto want = local->run({}, {{"image", image(seed)}});
        if (got.ok() && want.ok() && std::fabs((*got)[0].data<float>()[3] - (*want)[0].data<float>()[3]) < 1e-5f) {
          good[c]++;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < 6; ++c) EXPECT_EQ(good[c], 5) << "client " << c;
}

TEST(RemoteStageTest, ServerThatDisappearsFailsFramesWithItsNameAndIsReconnected) {
  auto server = std::make_unique<ServerProcess>();
  uint16_t port = server->port();
  ASSERT_NE(port, 0);
  auto remote = remote_stage("classify", "127.0.0.1", port, {}, 5000ms);
  ASSERT_TRUE(remote.ok()) << remote.status().to_string();
  auto p = Pipeline::create({*remote});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->push({{"image", image(1)}}).ok());
  auto first = (*p)->pull(10000ms);
  ASSERT_TRUE(first.ok() && first->ok());

  server->kill_now();
  ASSERT_TRUE((*p)->push({{"image", image(2)}}).ok());
  auto lost = (*p)->pull(10000ms);
  ASSERT_TRUE(lost.ok()) << lost.status().to_string();
  EXPECT_EQ(lost->status.code(), StatusCode::kUnavailable);
  EXPECT_NE(lost->status.message().find("remote stage 'tiny_cnn' at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << lost->status.message();

  // The pipeline keeps working: a server back on the same port is picked up again.
  server = std::make_unique<ServerProcess>(port);
  ASSERT_EQ(server->port(), port);
  ASSERT_TRUE((*p)->push({{"image", image(3)}}).ok());
  auto back = (*p)->pull(10000ms);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->ok()) << back->status.to_string();
  EXPECT_EQ(back->seq, 2u);
}

TEST(RemoteStageTest, NothingListeningIsAClearError) {
  ServerProcess server;
  uint16_t port = server.port();
  ASSERT_NE(port, 0);
  server.kill_now();
  auto remote = remote_stage("classify", "127.0.0.1", port);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(remote.status().message().find("cannot connect to 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << remote.status().message();
}

TEST(RemoteStageTest, ServedFunctionRemovesChangesAndFailsLikeALocalStage) {
  StageFn fn = [](const Frame& f) -> Expected<Frame> {
    if (!f.count("x")) return invalid_argument("no x");
    Frame out = f;
    out.erase("drop_me");
    out["x"] = Tensor::scalar<float>(f.at("x").data<float>()[0] * 2);
    out["label"] = Tensor::from_vector<std::string>({2}, {"a", "bc"});
    return out;
  };
  auto server = StageServer::serve("double", fn);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  auto remote = RemoteStage::connect("127.0.0.1", (*server)->port());
  ASSERT_TRUE(remote.ok()) << remote.status().to_string();
  EXPECT_EQ((*remote)->name(), "double");
  auto out = (*remote)->call({{"x", Tensor::scalar<float>(4)}, {"drop_me", Tensor::scalar<float>(1)},
                              {"keep", Tensor::scalar<bool>(true)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("x").data<float>()[0], 8.0f);
  EXPECT_EQ(out->count("drop_me"), 0u);
  EXPECT_TRUE(out->at("keep").data<bool>()[0]);
  EXPECT_EQ(out->at("label").data<std::string>()[1], "bc");

  auto failed = (*remote)->call({{"y", Tensor::scalar<float>(1)}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(failed.status().message().find("no x"), std::string::npos);
  EXPECT_EQ((*server)->frames_served(), 2u);
  EXPECT_EQ((*server)->frames_failed(), 1u);

  (*server)->stop();
  auto after_stop = (*remote)->call({{"x", Tensor::scalar<float>(1)}});
  ASSERT_FALSE(after_stop.ok());
  EXPECT_EQ(after_stop.status().code(), StatusCode::kUnavailable) << after_stop.status().to_string();
}

// StageServer::stop() with a frame running (a Loop of 2^40 iterations, hours): the frame's run
// ends at its next check through the stage's RunStopSource, its caller hears why, stop()
// returns within its bound, and a run of the same process outside the stage goes on.
TEST(RemoteStageTest, StopEndsTheFrameInFlightAndTellsItsCaller) {
  auto session = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  std::shared_ptr<const InferenceSession> shared(std::move(*session));
  auto server = StageServer::serve_model("loop", shared);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  auto remote = RemoteStage::connect("127.0.0.1", (*server)->port(), 60000ms);
  ASSERT_TRUE(remote.ok()) << remote.status().to_string();
  auto short_run = (*remote)->call(loop_feeds(3));
  ASSERT_TRUE(short_run.ok()) << short_run.status().to_string();
  EXPECT_EQ(short_run->at("acc").data<float>()[0], 3.f);

  RunOptions local_ro;  // a run of this process that is not the stage's
  std::atomic<bool> local_done{false};
  std::thread local([&] {
    (void)shared->run({}, loop_feeds(int64_t{1} << 40), local_ro);
    local_done = true;
  });
  auto answer = std::async(std::launch::async, [&] { return (*remote)->call(loop_feeds(int64_t{1} << 40)); });
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (!(*server)->frame_in_progress() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  const bool started = (*server)->frame_in_progress();
  const auto stop_start = std::chrono::steady_clock::now();
  std::thread stopper([&] { (*server)->stop(); });
  stopper.join();
  const auto stop_took = std::chrono::steady_clock::now() - stop_start;
  const bool answered = answer.wait_for(60s) == std::future_status::ready;
  EXPECT_FALSE(local_done) << "the run outside the stage stopped too";
  local_ro.terminate = true;
  local.join();
  ASSERT_TRUE(started) << "the frame did not start within 60 s";
  ASSERT_TRUE(answered) << "the caller got no answer within 60 s of stop()";
  EXPECT_FALSE((*server)->frame_in_progress());
  EXPECT_LT(stop_took, 5s) << std::chrono::duration_cast<std::chrono::milliseconds>(stop_took).count() << " ms";
  auto out = answer.get();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable) << out.status().to_string();
  EXPECT_NE(out.status().message().find("the run was stopped: stage 'loop' is shutting down"), std::string::npos)
      << out.status().to_string();
  EXPECT_EQ(runs_in_progress(), 0);
}

// `pyflame-rt serve` at SIGTERM with a frame running that would last hours: stop_all_runs ends
// it, the drain lets its answer out, the shutdown watchdog is armed and disarmed, and the
// process exits 0 well within --shutdown-grace-ms' default (10 s). Under ThreadSanitizer a
// report in the child makes its exit status 66, which fails here.
TEST(RemoteStageTest, SigtermEndsAServeProcessWithAFrameInFlight) {
  const std::string model = (std::filesystem::temp_directory_path() /
                             ("pfrt_sigterm_loop_" + std::to_string(getpid()) + ".onnx")).string();
  ASSERT_TRUE(save_onnx(counting_loop(), model).ok());
  ServerProcess server(0, model);
  std::filesystem::remove(model);
  ASSERT_NE(server.port(), 0);
  auto remote = RemoteStage::connect("127.0.0.1", server.port(), 60000ms);
  ASSERT_TRUE(remote.ok()) << remote.status().to_string();
  auto short_run = (*remote)->call(loop_feeds(3));  // the connection and the compile are done
  ASSERT_TRUE(short_run.ok()) << short_run.status().to_string();
  auto answer = std::async(std::launch::async, [&] { return (*remote)->call(loop_feeds(int64_t{1} << 40)); });
  std::this_thread::sleep_for(500ms);  // the frame is running in the child
  const auto start = std::chrono::steady_clock::now();
  const int status = server.terminate(60s);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status, 0) << "pyflame-rt serve's exit status after SIGTERM (66: a sanitizer report, its stderr above)";
  EXPECT_LT(took, 10s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  ASSERT_EQ(answer.wait_for(60s), std::future_status::ready);
  auto out = answer.get();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable) << out.status().to_string();
  EXPECT_NE(out.status().message().find("the run was stopped: the server is shutting down"), std::string::npos)
      << out.status().to_string();
}

}  // namespace
}  // namespace pyflame_rt
