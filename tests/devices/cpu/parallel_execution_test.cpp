// execution_mode "parallel": independent branches run at once on two workers and compute what
// the sequential program computes; an error in one branch ends the run cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "devices/cpu/cpu_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// x -> MatMul w1 -> Relu -> a;  x -> MatMul w2 -> Sigmoid -> b;  y = a + b;  outputs y and a.
Graph two_branches() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({64, 96})});
  g.initializers["w1"] = random_tensor({96, 80}, 1);
  g.initializers["w2"] = random_tensor({96, 80}, 2);
  g.add_node("MatMul", {"x", "w1"}, {"m1"}, "left_matmul");
  g.add_node("Relu", {"m1"}, {"a"}, "left_relu");
  g.add_node("MatMul", {"x", "w2"}, {"m2"}, "right_matmul");
  g.add_node("Sigmoid", {"m2"}, {"b"}, "right_sigmoid");
  g.add_node("Add", {"a", "b"}, {"y"}, "join");
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({64, 80})});
  g.outputs.push_back({"a", DType::kFloat32, Shape::from_dims({64, 80})});
  return g;
}

std::vector<Value> feed(uint32_t seed) {
  std::vector<Value> v;
  v.emplace_back(random_tensor({64, 96}, seed));
  return v;
}

TEST(ParallelExecutionTest, SameOutputsAsSequentialRunAfterRun) {
  Graph g = two_branches();
  auto seq = make_cpu_device(2)->compile(g);
  auto par = make_cpu_device(2, /*parallel_branches=*/true)->compile(g);
  ASSERT_TRUE(seq.ok() && par.ok());
  for (uint32_t run = 0; run < 20; ++run) {
    auto a = (*seq)->run(feed(run));
    auto b = (*par)->run(feed(run));
    ASSERT_TRUE(a.ok() && b.ok()) << (b.ok() ? a.status().to_string() : b.status().to_string());
    ASSERT_EQ(b->size(), 2u);
    for (size_t o = 0; o < 2; ++o) {
      const Tensor& x = (*a)[o].tensor;
      const Tensor& y = (*b)[o].tensor;
      ASSERT_EQ(x.dims(), y.dims());
      for (int64_t i = 0; i < x.numel(); ++i) {
        ASSERT_NEAR(x.data<float>()[i], y.data<float>()[i], 1e-4f) << "run " << run << " output " << o;
      }
    }
  }
  std::vector<NodeTiming> timings;
  auto profiled = (*par)->run_profiled(feed(99), &timings);
  ASSERT_TRUE(profiled.ok());
  ASSERT_EQ(timings.size(), 5u);  // every node once, in start order
  for (size_t i = 1; i < timings.size(); ++i) EXPECT_LE(timings[i - 1].start_us, timings[i].start_us);
  EXPECT_EQ(timings.back().name, "join");
}

TEST(ParallelExecutionTest, AFailingBranchEndsTheRunWithItsErrorAndTheProgramStaysUsable) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({4})});
  g.inputs.push_back({"idx", DType::kInt64, Shape::from_dims({2})});
  g.initializers["table"] = random_tensor({5, 3}, 3);
  g.add_node("Gather", {"table", "idx"}, {"rows"}, "lookup");
  g.add_node("Relu", {"x"}, {"r"}, "relu");
  g.outputs.push_back({"rows", DType::kFloat32, Shape::from_dims({2, 3})});
  g.outputs.push_back({"r", DType::kFloat32, Shape::from_dims({4})});
  auto par = make_cpu_device(2, true)->compile(g);
  ASSERT_TRUE(par.ok());
  auto inputs = [](int64_t index) {
    std::vector<Value> v;
    v.emplace_back(Tensor::from_vector<float>({4}, {-1, 2, -3, 4}));
    v.emplace_back(Tensor::from_vector<int64_t>({2}, {0, index}));
    return v;
  };
  auto bad = (*par)->run(inputs(7));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("lookup"), std::string::npos) << bad.status().message();
  auto good = (*par)->run(inputs(4));
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  EXPECT_EQ((*good)[1].tensor.data<float>()[3], 4.0f);
}

}  // namespace
}  // namespace pyflame_rt
