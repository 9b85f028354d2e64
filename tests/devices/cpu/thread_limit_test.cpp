// IntraOpThreadLimit: a run under a limit uses at most that many OpenMP threads, and the
// limit does not stick to the thread after it ends (omp_set_num_threads is per thread and sticky).
#include "devices/thread_limit.h"

#include <gtest/gtest.h>
#include <omp.h>

#include "devices/cpu/cpu_device.h"

namespace pyflame_rt {
namespace {

std::unique_ptr<Executable> relu_program(int threads) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({4})});
  Node n;
  n.op_type = "Relu";
  n.name = "relu";
  n.inputs = {"x"};
  n.outputs = {"y"};
  g.nodes.push_back(n);
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({4})});
  auto exe = make_cpu_device(threads)->compile(g);
  EXPECT_TRUE(exe.ok()) << exe.status().to_string();
  return std::move(exe).value();
}

void run_once(const Executable& exe) {
  std::vector<Value> feeds;
  feeds.emplace_back(Tensor::from_vector<float>({4}, {-1, 2, -3, 4}));
  auto out = exe.run(std::move(feeds));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].tensor.data<float>()[1], 2.0f);
}

TEST(IntraOpThreadLimitTest, CapsRunsOnThisThreadOnlyWhileAlive) {
  auto three = relu_program(3);
  EXPECT_EQ(IntraOpThreadLimit::current(), 0);
  {
    IntraOpThreadLimit one(1);
    EXPECT_EQ(IntraOpThreadLimit::current(), 1);
    run_once(*three);
    EXPECT_EQ(omp_get_max_threads(), 1);
    {
      IntraOpThreadLimit none(0);
      EXPECT_EQ(IntraOpThreadLimit::current(), 0);
    }
    EXPECT_EQ(IntraOpThreadLimit::current(), 1);
  }
  EXPECT_EQ(IntraOpThreadLimit::current(), 0);
  run_once(*three);
  EXPECT_EQ(omp_get_max_threads(), 3);
  // A limit above the session's count changes nothing.
  IntraOpThreadLimit eight(8);
  run_once(*three);
  EXPECT_EQ(omp_get_max_threads(), 3);
}

}  // namespace
}  // namespace pyflame_rt
