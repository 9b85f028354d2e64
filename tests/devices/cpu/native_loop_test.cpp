// A Loop on the CPU device with its body compiled natively (native_loop.h): against the
// reference interpreter on a body shaped like Mask R-CNN's paste-masks loop (outer-scope reads,
// Gather by the iteration number, Resize, a Concat-grown loop-carried value, the condition an
// outer value passed through), with every node reported native; the condition ending the loop
// early, zero trips, scan outputs, and the run's deadline and terminate flag checked per
// iteration.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "devices/cpu/cpu_device.h"
#include "devices/device.h"
#include "devices/ref/ref_device.h"
#include "devices/run_interrupt.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

ValueInfo vi(const std::string& name, DType t, Dims dims) { return {name, t, Shape::from_dims(dims)}; }
ValueInfo vi_any(const std::string& name, DType t) { return {name, t, Shape::unknown_rank()}; }

Node make_node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out, const std::string& name) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// Loop(M, cond, acc0) over masks [N, 4, 4]: iteration i resizes masks[i] to 8x8 (linear),
// appends it to acc along axis 0 and emits its maximum as a scan output. The body's condition
// output is an Identity of `keep_going` (outer), or Less(i + 1, stop) when `stop_early`.
Graph paste_like_loop(bool stop_early) {
  auto body = std::make_shared<Graph>();
  body->inputs = {vi("i", DType::kInt64, {}), vi("cond_in", DType::kBool, {}), vi_any("acc_in", DType::kFloat32)};
  auto add = [&](Node n) { body->nodes.push_back(std::move(n)); };
  add(make_node("Gather", {"masks", "i"}, {"m"}, "body/gather"));
  Node ax = make_node("Constant", {}, {"axes0"}, "body/axes");
  ax.attributes["value"] = Attribute::make_tensor(Tensor::from_vector<int64_t>({1}, {0}));
  add(ax);
  add(make_node("Unsqueeze", {"m", "axes0"}, {"m4"}, "body/unsqueeze"));  // [1, 4, 4] -> [1, 1, 4, 4]
  add(make_node("Unsqueeze", {"m4", "axes0"}, {"m5"}, "body/unsqueeze2"));
  Node rs = make_node("Resize", {"m5", "", "scales"}, {"r"}, "body/resize");
  rs.attributes["mode"] = Attribute::make_string("linear");
  add(rs);
  Node cat = make_node("Concat", {"acc_in", "r"}, {"acc_out"}, "body/concat");
  cat.attributes["axis"] = Attribute::make_int(0);
  add(cat);
  Node mx = make_node("ReduceMax", {"r"}, {"peak"}, "body/reducemax");
  mx.attributes["keepdims"] = Attribute::make_int(0);
  add(mx);
  if (stop_early) {
    Node one = make_node("Constant", {}, {"one"}, "body/one");
    one.attributes["value"] = Attribute::make_tensor(Tensor::scalar<int64_t>(1));
    add(one);
    add(make_node("Add", {"i", "one"}, {"next"}, "body/add"));
    add(make_node("Less", {"next", "stop"}, {"cond_out"}, "body/less"));
  } else {
    add(make_node("Identity", {"keep_going"}, {"cond_out"}, "body/identity"));
  }
  body->outputs = {vi("cond_out", DType::kBool, {}), vi_any("acc_out", DType::kFloat32), vi("peak", DType::kFloat32, {})};

  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {vi("M", DType::kInt64, {}), vi("x", DType::kFloat32, {5, 4, 4}), vi("acc0", DType::kFloat32, {0, 1, 8, 8})};
  g.initializers["keep_going"] = Tensor::scalar<bool>(true);
  g.initializers["scales"] = Tensor::from_vector<float>({4}, {1, 1, 2, 2});
  g.initializers["stop"] = Tensor::scalar<int64_t>(3);
  g.nodes.push_back(make_node("Relu", {"x"}, {"masks"}, "relu"));
  Node loop = make_node("Loop", {"M", stop_early ? "" : "keep_going", "acc0"}, {"pasted", "peaks"}, "loop");
  loop.attributes["body"] = Attribute::make_graph(body);
  g.nodes.push_back(loop);
  g.outputs = {vi_any("pasted", DType::kFloat32), vi_any("peaks", DType::kFloat32)};
  return g;
}

void expect_same(const Tensor& a, const Tensor& b, const std::string& label) {
  ASSERT_EQ(a.dims(), b.dims()) << label;
  ASSERT_EQ(a.dtype(), b.dtype()) << label;
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-6) << label << " element " << i;
  }
}

TEST(NativeLoopTest, PasteLikeBodyRunsNativelyAsTheReference) {
  for (bool stop_early : {false, true}) {
    Graph g = paste_like_loop(stop_early);
    auto cpu = make_cpu_device(2)->compile(g);
    auto ref = make_ref_device()->compile(g);
    ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
    ASSERT_TRUE(ref.ok()) << ref.status().to_string();
    Tensor x = random_tensor({5, 4, 4}, 41);
    for (int64_t trips : {0, 1, 5}) {
      std::vector<Value> feeds = {Value(Tensor::scalar<int64_t>(trips)), Value(x), Value(Tensor(DType::kFloat32, {0, 1, 8, 8}))};
      auto a = (*cpu)->run(feeds);
      auto b = (*ref)->run(feeds);
      ASSERT_TRUE(a.ok()) << a.status().to_string();
      ASSERT_TRUE(b.ok()) << b.status().to_string();
      const std::string label = std::string(stop_early ? "stop at 3" : "M only") + ", M=" + std::to_string(trips);
      // The condition ends the loop after 3 iterations when it is computed, else M does.
      const int64_t ran = stop_early ? std::min<int64_t>(trips, 3) : trips;
      EXPECT_EQ((*a)[0].tensor.dims(), (Dims{ran, 1, 8, 8})) << label;
      EXPECT_EQ((*a)[1].tensor.dims(), (Dims{ran})) << label;
      expect_same((*a)[0].tensor, (*b)[0].tensor, label + " pasted");
      expect_same((*a)[1].tensor, (*b)[1].tensor, label + " peaks");
    }
    EXPECT_TRUE((*cpu)->fallback_nodes().empty()) << ::testing::PrintToString((*cpu)->fallback_nodes());
    int body_nodes = 0;
    bool loop_native = false;
    for (const NodeKernel& n : (*cpu)->node_kernels()) {
      EXPECT_EQ(n.kernel, "native") << n.op_type << " '" << n.node << "'";
      body_nodes += n.node.rfind("body/", 0) == 0;
      loop_native = loop_native || (n.op_type == "Loop" && n.kernel == "native");
    }
    EXPECT_TRUE(loop_native);
    // Constant and Identity nodes fold away; Gather, two Unsqueeze, Resize, Concat, ReduceMax
    // (and Add, Less) remain.
    EXPECT_EQ(body_nodes, stop_early ? 8 : 6);
  }
}

// ONNX's test_loop11 shape: the condition passed through from the body's input, a scan output
// that is an Identity of the loop-carried value (two body outputs, one value).
TEST(NativeLoopTest, ScanOutputAliasingALoopCarriedValue) {
  auto body = std::make_shared<Graph>();
  body->inputs = {vi("i", DType::kInt64, {}), vi("cond_in", DType::kBool, {}), vi("sum_in", DType::kInt64, {1})};
  body->nodes.push_back(make_node("Add", {"sum_in", "i"}, {"sum_out"}, "body/add"));
  body->nodes.push_back(make_node("Identity", {"cond_in"}, {"cond_out"}, "body/cond"));
  body->nodes.push_back(make_node("Identity", {"sum_out"}, {"seen"}, "body/seen"));
  body->outputs = {vi("cond_out", DType::kBool, {}), vi("sum_out", DType::kInt64, {1}), vi("seen", DType::kInt64, {1})};
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {vi("M", DType::kInt64, {}), vi("s0", DType::kInt64, {1})};
  Node loop = make_node("Loop", {"M", "", "s0"}, {"s", "all"}, "loop");
  loop.attributes["body"] = Attribute::make_graph(body);
  g.nodes.push_back(loop);
  g.outputs = {vi("s", DType::kInt64, {1}), vi("all", DType::kInt64, {5, 1})};
  auto cpu = make_cpu_device(1)->compile(g);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  auto out = (*cpu)->run({Value(Tensor::scalar<int64_t>(5)), Value(Tensor::from_vector<int64_t>({1}, {10}))});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.value_as_int64(0), 10 + 0 + 1 + 2 + 3 + 4);
  const Tensor& all = (*out)[1].tensor;
  ASSERT_EQ(all.dims(), (Dims{5, 1}));
  const int64_t expected[] = {10, 11, 13, 16, 20};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all.value_as_int64(i), expected[i]) << "iteration " << i;
  for (const NodeKernel& n : (*cpu)->node_kernels()) EXPECT_EQ(n.kernel, "native") << n.op_type << " '" << n.node << "'";
}

// A loop only the condition would end (no trip count, the condition always true): the deadline
// ends it, and a set terminate flag ends it before its first iteration.
TEST(NativeLoopTest, DeadlineAndTerminateEndTheLoop) {
  auto body = std::make_shared<Graph>();
  body->inputs = {vi("i", DType::kInt64, {}), vi("cond_in", DType::kBool, {}), vi("n_in", DType::kInt64, {})};
  body->nodes.push_back(make_node("Add", {"n_in", "i"}, {"n_out"}, "body/add"));
  body->outputs = {vi("cond_in", DType::kBool, {}), vi("n_out", DType::kInt64, {})};
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {vi("c", DType::kBool, {}), vi("n0", DType::kInt64, {})};
  Node loop = make_node("Loop", {"", "c", "n0"}, {"n"}, "loop");
  loop.attributes["body"] = Attribute::make_graph(body);
  g.nodes.push_back(loop);
  g.outputs = {vi("n", DType::kInt64, {})};
  auto cpu = make_cpu_device(1)->compile(g);
  ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
  std::vector<Value> feeds = {Value(Tensor::scalar<bool>(true)), Value(Tensor::scalar<int64_t>(0))};

  RunContext deadline;
  deadline.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  auto timed_out = (*cpu)->run(feeds, deadline);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.status().code(), StatusCode::kDeadlineExceeded) << timed_out.status().to_string();

  std::atomic<bool> stop{true};
  RunContext terminate;
  terminate.terminate = &stop;
  auto terminated = (*cpu)->run(feeds, terminate);
  ASSERT_FALSE(terminated.ok());
  EXPECT_NE(terminated.status().message().find("terminated"), std::string::npos) << terminated.status().to_string();

  // A false initial condition: no iteration, the initial value out.
  auto none = (*cpu)->run({Value(Tensor::scalar<bool>(false)), Value(Tensor::scalar<int64_t>(7))});
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_EQ((*none)[0].tensor.value_as_int64(0), 7);
  for (const NodeKernel& n : (*cpu)->node_kernels()) EXPECT_EQ(n.kernel, "native") << n.op_type << " '" << n.node << "'";
}

}  // namespace
}  // namespace pyflame_rt
