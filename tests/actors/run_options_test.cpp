// RunOptions (terminate, log ids), free dimension overrides, creation warnings and the
// option field table of the C++ session API.
#include "session/run_options.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include "actors/async_run.h"
#include "session/inference_session.h"
#include "session/session_option_fields.h"
#include "graph/logging.h"

namespace pyflame_rt {
namespace {

// acc = acc0 + trips (a Loop adding one per iteration): long enough to cancel with huge trips.
Graph counting_loop() {
  auto body = std::make_shared<Graph>();
  body->name = "body";
  body->opset_imports[""] = 13;
  body->inputs = {{"iter", DType::kInt64, Shape::from_dims({})},
                  {"cond_in", DType::kBool, Shape::from_dims({})},
                  {"acc_in", DType::kFloat32, Shape::from_dims({1})}};
  body->initializers["one"] = Tensor::from_vector<float>({1}, {1.f});
  body->add_node("Identity", {"cond_in"}, {"cond_out"});
  body->add_node("Add", {"acc_in", "one"}, {"acc_out"});
  body->outputs = {{"cond_out", DType::kBool, Shape::from_dims({})}, {"acc_out", DType::kFloat32, Shape::from_dims({1})}};
  Graph g;
  g.name = "loop";
  g.opset_imports[""] = 13;
  g.inputs = {{"trips", DType::kInt64, Shape::from_dims({})},
              {"cond", DType::kBool, Shape::from_dims({})},
              {"acc0", DType::kFloat32, Shape::from_dims({1})}};
  Node& loop = g.add_node("Loop", {"trips", "cond", "acc0"}, {"acc"}, "loop");
  loop.attributes["body"] = Attribute::make_graph(body);
  g.outputs = {{"acc", DType::kFloat32, Shape::from_dims({1})}};
  return g;
}

std::map<std::string, Tensor> loop_feeds(int64_t trips) {
  return {{"trips", Tensor::scalar<int64_t>(trips)}, {"cond", Tensor::scalar<bool>(true)},
          {"acc0", Tensor::from_vector<float>({1}, {0.f})}};
}

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
