// If / Loop / Scan through the interpreter, with bodies built from a test-only Add kernel so
// these tests do not depend on the arithmetic kernels.
#include <gtest/gtest.h>

#include <limits>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/ref_program.h"

namespace pyflame_rt {
namespace {

Status test_add(KernelContext& ctx) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  Tensor y(a.dtype(), a.dims());
  for (int64_t i = 0; i < a.numel(); ++i) {
    int64_t j = b.numel() == 1 ? 0 : i;
    if (a.dtype() == DType::kInt64) y.data<int64_t>()[i] = a.data<int64_t>()[i] + b.value_as_int64(j);
    else y.data<float>()[i] = a.data<float>()[i] + static_cast<float>(b.value_as_double(j));
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status test_identity(KernelContext& ctx) {
  ctx.set_output_value(0, *ctx.input_value(0));
  return Status::OK();
}

KernelRegistry registry() {
  KernelRegistry r;
  register_control_flow_kernels(r);
  r.add("", "Add", test_add);
  r.add("", "Identity", test_identity);
  return r;
}

ValueInfo vi(const std::string& name, DType t, Dims d) { return {name, t, Shape::from_dims(d)}; }

Expected<std::vector<Value>> run(const Graph& g, std::vector<Value> in) {
  static const KernelRegistry r = registry();
  ASSIGN_OR_RETURN(auto p, RefProgram::build(g, r));
  return p->run(std::move(in));
}

// A subgraph built without opset imports runs at its model's opsets (ONNX): an If branch made
// in code ran TopK as TopK-1, its k the attribute's default 1 instead of the input.
TEST(ControlFlowTest, BranchWithoutOpsetImportsUsesTheEnclosingGraphs) {
  KernelRegistry r = registry();
  // The old version registered last: what an opset of 0 ("any") used to find.
  r.add(KernelDef{"", "Versioned", 11, std::numeric_limits<int64_t>::max(), {}}, [](KernelContext& ctx) {
    ctx.set_output(0, Tensor::from_vector<float>({1}, {11.f}));
    return Status::OK();
  });
  r.add(KernelDef{"", "Versioned", 1, 10, {}}, [](KernelContext& ctx) {
    ctx.set_output(0, Tensor::from_vector<float>({1}, {1.f}));
    return Status::OK();
  });
  auto branch = std::make_shared<Graph>();  // no opset_imports of its own
  branch->add_node("Versioned", {}, {"v"});
  branch->outputs.push_back(vi("v", DType::kFloat32, {1}));
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {vi("c", DType::kBool, {})};
  Node& n = g.add_node("If", {"c"}, {"y"});
  n.attributes["then_branch"] = Attribute::make_graph(branch);
  n.attributes["else_branch"] = Attribute::make_graph(branch);
  g.outputs.push_back(vi("y", DType::kFloat32, {1}));
  auto p = RefProgram::build(g, r);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  auto y = (*p)->run({Tensor::scalar<bool>(true)});
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_EQ((*y)[0].tensor.data<float>()[0], 11.f);
}

TEST(ControlFlowTest, IfPicksBranchAndReadsOuterScope) {
  auto then_g = std::make_shared<Graph>();
  then_g->add_node("Add", {"x", "x"}, {"t"});
  then_g->outputs.push_back(vi("t", DType::kFloat32, {2}));
  auto else_g = std::make_shared<Graph>();
  else_g->add_node("Identity", {"x"}, {"e"});
  else_g->outputs.push_back(vi("e", DType::kFloat32, {2}));
  Graph g;
  g.inputs = {vi("c", DType::kBool, {}), vi("x", DType::kFloat32, {2})};
  Node& n = g.add_node("If", {"c"}, {"y"});
  n.attributes["then_branch"] = Attribute::make_graph(then_g);
  n.attributes["else_branch"] = Attribute::make_graph(else_g);
  g.outputs.push_back(vi("y", DType::kFloat32, {2}));
  Tensor x = Tensor::from_vector<float>({2}, {1.5f, -2.0f});
  auto yes = run(g, {Tensor::scalar<bool>(true), x});
  ASSERT_TRUE(yes.ok()) << yes.status().to_string();
  EXPECT_EQ((*yes)[0].tensor.data<float>()[0], 3.0f);
  EXPECT_EQ((*yes)[0].tensor.data<float>()[1], -4.0f);
  auto no = run(g, {Tensor::scalar<bool>(false), x});
  ASSERT_TRUE(no.ok());
  EXPECT_EQ((*no)[0].tensor.data<float>()[1], -2.0f);
  auto bad = run(g, {Tensor::from_vector<bool>({2}, {true, false}), x});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("one element"), std::string::npos);
}

// Loop M=5: sum_out = sum_in + i; scan output collects sum_in each iteration.
Graph running_sum_loop() {
  auto body = std::make_shared<Graph>();
  body->inputs = {vi("i", DType::kInt64, {}), vi("cond_in", DType::kBool, {}), vi("sum_in", DType::kInt64, {1})};
  body->add_node("Add", {"sum_in", "i"}, {"sum_out"});
  body->add_node("Identity", {"cond_in"}, {"cond_out"});
  body->add_node("Identity", {"sum_in"}, {"seen"});
  body->outputs = {vi("cond_out", DType::kBool, {}), vi("sum_out", DType::kInt64, {1}), vi("seen", DType::kInt64, {1})};
  Graph g;
  g.inputs = {vi("M", DType::kInt64, {}), vi("s0", DType::kInt64, {1})};
  Node& n = g.add_node("Loop", {"M", "", "s0"}, {"s", "all"});
  n.attributes["body"] = Attribute::make_graph(body);
  g.outputs = {vi("s", DType::kInt64, {1}), vi("all", DType::kInt64, {5, 1})};
  return g;
}

TEST(ControlFlowTest, LoopCarriesStateAndStacksScanOutputs) {
  auto out = run(running_sum_loop(), {Tensor::scalar<int64_t>(5), Tensor::from_vector<int64_t>({1}, {10})});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.data<int64_t>()[0], 10 + 0 + 1 + 2 + 3 + 4);
  const Tensor& all = (*out)[1].tensor;
  ASSERT_EQ(all.dims(), (Dims{5, 1}));
  std::vector<int64_t> expected = {10, 10, 11, 13, 16};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all.data<int64_t>()[i], expected[static_cast<size_t>(i)]);
}

TEST(ControlFlowTest, LoopWithZeroTripsReturnsInitialState) {
  auto out = run(running_sum_loop(), {Tensor::scalar<int64_t>(0), Tensor::from_vector<int64_t>({1}, {7})});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.data<int64_t>()[0], 7);
  EXPECT_EQ((*out)[1].tensor.dim(0), 0);
}

// Scan over axis 1 of [2,3] backwards: state accumulates, scan output records each state.
TEST(ControlFlowTest, ScanCumulativeSumReverseOnAxis1) {
  auto body = std::make_shared<Graph>();
  body->inputs = {vi("acc_in", DType::kFloat32, {2}), vi("x_t", DType::kFloat32, {2})};
  body->add_node("Add", {"acc_in", "x_t"}, {"acc_out"});
  body->add_node("Identity", {"acc_out"}, {"y_t"});
  body->outputs = {vi("acc_out", DType::kFloat32, {2}), vi("y_t", DType::kFloat32, {2})};
  Graph g;
  g.opset_imports[""] = 16;
  g.inputs = {vi("init", DType::kFloat32, {2}), vi("x", DType::kFloat32, {2, 3})};
  Node& n = g.add_node("Scan", {"init", "x"}, {"final", "ys"});
  n.attributes["body"] = Attribute::make_graph(body);
  n.attributes["num_scan_inputs"] = Attribute::make_int(1);
  n.attributes["scan_input_axes"] = Attribute::make_ints({1});
  n.attributes["scan_input_directions"] = Attribute::make_ints({1});
  g.outputs = {vi("final", DType::kFloat32, {2}), vi("ys", DType::kFloat32, {3, 2})};
  auto out = run(g, {Tensor::from_vector<float>({2}, {0, 100}),
                     Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& fin = (*out)[0].tensor;
  EXPECT_EQ(fin.data<float>()[0], 6.0f);
  EXPECT_EQ(fin.data<float>()[1], 115.0f);
  const Tensor& ys = (*out)[1].tensor;
  ASSERT_EQ(ys.dims(), (Dims{3, 2}));
  std::vector<float> expected = {3, 106, 5, 111, 6, 115};  // x reversed along axis 1: 3,2,1 / 6,5,4
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ys.data<float>()[i], expected[static_cast<size_t>(i)]);
}

TEST(ControlFlowTest, LoopBodyWithWrongArityIsClearError) {
  auto body = std::make_shared<Graph>();
  body->inputs = {vi("i", DType::kInt64, {})};
  body->outputs = {vi("i", DType::kInt64, {})};
  Graph g;
  g.inputs = {vi("M", DType::kInt64, {})};
  Node& n = g.add_node("Loop", {"M", ""}, {}, "bad_loop");
  n.attributes["body"] = Attribute::make_graph(body);
  auto out = run(g, {Tensor::scalar<int64_t>(2)});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("'bad_loop'"), std::string::npos);
  EXPECT_NE(out.status().message().find("expected 2"), std::string::npos);
}

}  // namespace
}  // namespace pyflame_rt
