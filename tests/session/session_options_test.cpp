#include "session/session_options.h"

#include <gtest/gtest.h>

#include "session/inference_session.h"

namespace pyflame_rt {
namespace {

TEST(SessionOptionsTest, DefaultsAreValid) { EXPECT_TRUE(SessionOptions().validate().ok()); }

TEST(SessionOptionsTest, BadDeviceNamesFieldExpectedAndReceived) {
  SessionOptions o;
  o.device = "gpu";
  Status st = o.validate();
  ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("SessionOptions.device"), std::string::npos);
  EXPECT_NE(st.message().find("'wse2'"), std::string::npos);
  EXPECT_NE(st.message().find("'gpu'"), std::string::npos);
}

TEST(SessionOptionsTest, NegativeThreadsRejected) {
  SessionOptions o;
  o.num_threads = -2;
  EXPECT_EQ(o.validate().code(), StatusCode::kInvalidArgument);
}

TEST(InferenceSessionTest, UnsupportedOpNamesOpAndNode) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({2})});
  g.add_node("NoSuchOp", {"x"}, {"y"}, "weird");
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({2})});
  auto s = InferenceSession::create_from_graph(g);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotImplemented);
  EXPECT_NE(s.status().message().find("'NoSuchOp'"), std::string::npos);
  EXPECT_NE(s.status().message().find("'weird'"), std::string::npos);
  EXPECT_NE(s.status().message().find("opset 13"), std::string::npos);
}

TEST(InferenceSessionTest, MissingFileIsNoSuchFile) {
  auto s = InferenceSession::create("/nonexistent/model.onnx");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNoSuchFile);
}

}  // namespace
}  // namespace pyflame_rt
