// Custom ops: a C++ kernel registered in-process and the kernels of a C shared library
// (tests/custom_ops/test_custom_ops_library.c) run inside sessions like built-in ops.
#include "devices/custom_ops.h"

#include <gtest/gtest.h>

#include "session/inference_session.h"

namespace pyflame_rt {
namespace {

ValueInfo f32(const std::string& name, Dims dims) { return {name, DType::kFloat32, Shape::from_dims(dims)}; }

// y = Op(Relu(x)) with Op from `domain`.
Graph custom_graph(const std::string& domain, const std::string& op, std::map<std::string, Attribute> attrs = {}) {
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports[domain] = 1;
  g.inputs = {f32("x", {2, 3})};
  g.add_node("Relu", {"x"}, {"r"});
  Node& n = g.add_node(op, {"r"}, {"y"}, "custom");
  n.domain = domain;
  n.attributes = std::move(attrs);
  g.outputs = {f32("y", {2, 3})};
  return g;
}

TEST(CustomOpsTest, CppKernelRunsInSessionAndCanBeReplaced) {
  ASSERT_TRUE(register_custom_op("cpp.ops", "Twice", [](KernelContext& ctx) {
    RETURN_IF_ERROR(ctx.require_input(0));
    Tensor y = ctx.input(0)->clone();
    for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] *= 2.0f;
    ctx.set_output(0, std::move(y));
    return Status::OK();
  }).ok());
  auto session = InferenceSession::create_from_graph(custom_graph("cpp.ops", "Twice"));
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  Tensor x = Tensor::from_vector<float>({2, 3}, {-1, 0.5f, 2, -3, 4, 0.25f});
  auto out = (*session)->run({}, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::vector<float> expected = {0, 1, 4, 0, 8, 0.5f};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], expected[i]);
  EXPECT_TRUE(unregister_custom_op("cpp.ops", "Twice"));
  EXPECT_FALSE(unregister_custom_op("cpp.ops", "Twice"));
}

TEST(CustomOpsTest, KernelErrorNamesTheNode) {
  ASSERT_TRUE(register_custom_op("cpp.ops", "Broken", [](KernelContext& ctx) {
    return ctx.error(StatusCode::kRuntimeError, "always fails");
  }).ok());
  auto session = InferenceSession::create_from_graph(custom_graph("cpp.ops", "Broken"));
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  auto out = (*session)->run({}, {{"x", Tensor(DType::kFloat32, {2, 3})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("always fails"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("custom"), std::string::npos) << out.status().message();
  unregister_custom_op("cpp.ops", "Broken");
}

TEST(CustomOpsTest, BuiltInDomainsAreRefused) {
  auto noop = [](KernelContext&) { return Status::OK(); };
  EXPECT_EQ(register_custom_op("", "Relu", noop).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(register_custom_op("ai.onnx", "Relu", noop).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(register_custom_op("pyflame_rt", "FusedConv", noop).code(), StatusCode::kInvalidArgument);
}

TEST(CustomOpsTest, SharedLibraryKernelsRunInSession) {
  auto added = load_custom_ops_library(PFRT_TEST_CUSTOM_OPS_LIB);
  ASSERT_TRUE(added.ok()) << added.status().to_string();
  EXPECT_EQ(*added, (std::vector<std::string>{"test.ops.ScaleAdd", "test.ops.CountPositive"}));
  auto session = InferenceSession::create_from_graph(
      custom_graph("test.ops", "ScaleAdd", {{"scale", Attribute::make_float(3.0f)},
                                            {"bias", Attribute::make_float(0.5f)}}));
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  Tensor x = Tensor::from_vector<float>({2, 3}, {-1, 0.5f, 2, -3, 4, 0.25f});
  auto out = (*session)->run({}, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::vector<float> expected = {0.5f, 2.0f, 6.5f, 0.5f, 12.5f, 1.25f};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], expected[i]);
}

TEST(CustomOpsTest, MissingLibraryAndMissingSymbolAreClear) {
  auto missing = load_custom_ops_library("/no/such/libops.so");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/no/such/libops.so"), std::string::npos);
  auto no_symbol = load_custom_ops_library("libm.so.6");  // loads, exports no registration function
  ASSERT_FALSE(no_symbol.ok());
  EXPECT_NE(no_symbol.status().message().find("PyFlameRT_RegisterCustomOps"), std::string::npos);
}

}  // namespace
}  // namespace pyflame_rt
