// RunOptions (terminate, log ids), free dimension overrides, creation warnings and the
// option field table of the C++ session API.
#include "session/run_options.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "actors/async_run.h"
#include "session/inference_session.h"
#include "session/session_option_fields.h"
#include "devices/run_interrupt.h"
#include "graph/logging.h"
#include "tests/common/counting_loop.h"

namespace pyflame_rt {
namespace {

TEST(RunOptionsTest, LoopRunsToTheEndWithoutTerminate) {
  auto s = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  RunOptions ro;
  auto out = (*s)->run({}, loop_feeds(25), ro);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at(0).data<float>()[0], 25.f);
}

TEST(RunOptionsTest, TerminateSetBeforeTheRunFailsAtOnce) {
  auto s = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(s.ok());
  RunOptions ro;
  ro.terminate = true;
  auto out = (*s)->run({}, loop_feeds(5), ro);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kFail);
  EXPECT_NE(out.status().message().find("terminate"), std::string::npos);
}

TEST(RunOptionsTest, TerminateCancelsARunInProgress) {
  auto s = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(s.ok());
  RunOptions ro;
  std::atomic<bool> started{false};
  Expected<std::vector<Tensor>> out = Status();
  std::thread runner([&] {
    started = true;
    out = (*s)->run({}, loop_feeds(int64_t{1} << 40), ro);  // hours without terminate
  });
  while (!started) std::this_thread::yield();
  ro.terminate = true;
  runner.join();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kFail);
  // The session stays usable.
  RunOptions fresh;
  EXPECT_TRUE((*s)->run({}, loop_feeds(3), fresh).ok());
}

TEST(RunOptionsTest, RunLinesCarryTheSessionAndRunIds) {
  SessionOptions so;
  so.log_id = "sess-a";
  auto s = InferenceSession::create_from_graph(counting_loop(), so);
  ASSERT_TRUE(s.ok());
  std::vector<std::string> ids;
  set_log_to_stderr(false);
  uint64_t sink = add_log_sink([&](LogSeverity, const std::string& id, const std::string&) { ids.push_back(id); });
  RunOptions ro;
  ro.log_id = "req-9";
  ro.log_severity_level = 0;
  ASSERT_TRUE((*s)->run({}, loop_feeds(2), ro).ok());
  RunOptions quiet;  // the default threshold (warning): no lines for a good run
  ASSERT_TRUE((*s)->run({}, loop_feeds(2), quiet).ok());
  remove_log_sink(sink);
  set_log_to_stderr(true);
  ASSERT_FALSE(ids.empty());
  for (const auto& id : ids) EXPECT_EQ(id, "sess-a:req-9");
}

TEST(RunOptionsTest, RunAsyncCallsBackWithTheOutputs) {
  auto s = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(s.ok());
  std::shared_ptr<const InferenceSession> session(std::move(*s));
  std::promise<Expected<std::vector<Value>>> answer;
  auto done = answer.get_future();
  run_async(session, {}, loop_feeds(7), std::make_shared<RunOptions>(),
            [&](Expected<std::vector<Value>> out) { answer.set_value(std::move(out)); });
  ASSERT_EQ(done.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  auto out = done.get();
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at(0).tensor.data<float>()[0], 7.f);
}

// Waits (bounded) until the process counts `n` runs in progress (RunInProgress).
bool wait_for_runs(int64_t n) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (runs_in_progress() < n) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// stop_all_runs (what `pyflame-rt serve` does at SIGTERM) from one thread ends the runs of two
// others, of one session and of another, at their next check; runs_in_progress() counts them
// while they run and after; resume_all_runs() lets the next runs go to their end.
TEST(RunOptionsTest, StopAllRunsEndsTheRunsOfEveryThread) {
  auto a = InferenceSession::create_from_graph(counting_loop());
  auto b = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(runs_in_progress(), 0);
  std::vector<Expected<std::vector<Tensor>>> out(3, Status());
  std::vector<std::thread> runners;
  const InferenceSession* sessions[3] = {a->get(), a->get(), b->get()};
  for (int i = 0; i < 3; ++i) {
    runners.emplace_back([&, i] {
      RunOptions ro;
      out[i] = sessions[i]->run({}, loop_feeds(int64_t{1} << 40), ro);  // hours unless stopped
    });
  }
  const bool all_started = wait_for_runs(3);
  std::thread stopper([] { stop_all_runs("the test is stopping"); });
  stopper.join();
  for (auto& t : runners) t.join();
  EXPECT_TRUE(all_runs_stopped());
  resume_all_runs();
  ASSERT_TRUE(all_started) << runs_in_progress() << " runs in progress after 60 s, expected 3";
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(out[i].ok()) << "run " << i;
    EXPECT_EQ(out[i].status().code(), StatusCode::kUnavailable) << out[i].status().to_string();
    EXPECT_NE(out[i].status().message().find("the run was stopped: the test is stopping"), std::string::npos)
        << out[i].status().to_string();
  }
  EXPECT_EQ(runs_in_progress(), 0);
  RunOptions ro;
  auto after = (*a)->run({}, loop_feeds(4), ro);
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(after->at(0).data<float>()[0], 4.f);
}

// A RunStopSource (a served stage's frames, the model server's runs) stopped from another
// thread ends the runs started under its RunStopScope, and only those: a run of the same
// session on a thread without the scope goes on until its own terminate.
TEST(RunOptionsTest, ARunStopSourceEndsOnlyTheRunsOfItsScope) {
  auto s = InferenceSession::create_from_graph(counting_loop());
  ASSERT_TRUE(s.ok());
  auto source = std::make_shared<RunStopSource>("stage 'loop' is shutting down");
  Expected<std::vector<Tensor>> scoped = Status(), other = Status();
  std::atomic<bool> other_done{false};
  RunOptions other_ro;
  std::thread scoped_runner([&] {
    RunStopScope scope(source);
    RunOptions ro;
    scoped = (*s)->run({}, loop_feeds(int64_t{1} << 40), ro);
  });
  std::thread other_runner([&] {
    other = (*s)->run({}, loop_feeds(int64_t{1} << 40), other_ro);
    other_done = true;
  });
  const bool both_started = wait_for_runs(2);
  std::thread stopper([&] { source->stop(); });
  stopper.join();
  scoped_runner.join();
  EXPECT_FALSE(other_done) << "the run outside the scope stopped too: " << other.status().to_string();
  other_ro.terminate = true;
  other_runner.join();
  ASSERT_TRUE(both_started) << runs_in_progress() << " runs in progress after 60 s, expected 2";
  ASSERT_FALSE(scoped.ok());
  EXPECT_EQ(scoped.status().code(), StatusCode::kUnavailable) << scoped.status().to_string();
  EXPECT_NE(scoped.status().message().find("the run was stopped: stage 'loop' is shutting down"), std::string::npos)
      << scoped.status().to_string();
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kFail) << other.status().to_string();
  EXPECT_EQ(runs_in_progress(), 0);
}

TEST(SessionApiTest, FreeDimensionOverrideFixesInputShapes) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape({Dim(std::string("batch")), Dim(4)})});
  g.add_node("Relu", {"x"}, {"y"});
  g.outputs.push_back({"y", DType::kFloat32, Shape({Dim(std::string("batch")), Dim(4)})});
  SessionOptions so;
  so.free_dimension_overrides["batch"] = 3;
  auto s = InferenceSession::create_from_graph(g, so);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->inputs()[0].shape.to_string(), "[3,4]");
  auto bad = (*s)->run({}, {{"x", Tensor(DType::kFloat32, {2, 4})}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(SessionApiTest, IgnoredOptionsAndUnknownOutputs) {
  SessionOptions so;
  so.inter_op_num_threads = 4;
  so.config_entries["session.no_such_entry"] = "1";
  auto s = InferenceSession::create_from_graph(counting_loop(), so);
  ASSERT_TRUE(s.ok());
  std::string all;
  for (const auto& w : (*s)->warnings()) all += w + "\n";
  EXPECT_NE(all.find("inter_op_num_threads=4 is ignored"), std::string::npos) << all;
  EXPECT_NE(all.find("'session.no_such_entry'"), std::string::npos) << all;
  auto out = (*s)->run({"nope"}, loop_feeds(1));
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
}

TEST(SessionOptionFieldsTest, EveryFieldReadsBackWhatWasSet) {
  SessionOptions o;
  ASSERT_TRUE(set_session_option(o, "num_threads", OptionValue(int64_t{3})).ok());
  ASSERT_TRUE(set_session_option(o, "log_id", OptionValue(std::string("x"))).ok());
  ASSERT_TRUE(set_session_option(o, "optimization_level", OptionValue(int64_t{1})).ok());
  ASSERT_TRUE(
      set_session_option(o, "free_dimension_overrides", OptionValue(std::map<std::string, int64_t>{{"n", 2}})).ok());
  EXPECT_EQ(o.num_threads, 3);
  EXPECT_EQ(o.log_id, "x");
  EXPECT_EQ(o.optimization_level, OptLevel::kBasic);
  EXPECT_EQ(o.free_dimension_overrides.at("n"), 2);
  Status wrong = set_session_option(o, "num_threads", OptionValue(std::string("four")));
  EXPECT_EQ(wrong.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.message().find("kind int"), std::string::npos);
  EXPECT_EQ(set_session_option(o, "nope", OptionValue(true)).code(), StatusCode::kInvalidArgument);
  for (const auto& f : session_option_fields()) {  // every field's getter and setter agree
    SessionOptions copy;
    f.set(copy, f.get(o));
    EXPECT_EQ(f.get(copy), f.get(o)) << f.name;
  }
}

}  // namespace
}  // namespace pyflame_rt
