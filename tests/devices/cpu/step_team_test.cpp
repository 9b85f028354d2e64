// A run of a CpuProgram gives each step the OpenMP team step_threads() chooses: a step too small
// to pay for a fork runs on the calling thread, so no worker is woken for it. Counted by the
// program's step_team_counters(), not timed.
#include <gtest/gtest.h>

#include "devices/cpu/core_contention.h"
#include "devices/cpu/cpu_program.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

using cpu::CpuProgram;

// y = x * x on `dims`.
Graph square(const Dims& dims) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims(dims)});
  g.add_node("Mul", {"x", "x"}, {"y"}, "mul");
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
  return g;
}

// Runs square(dims) `runs` times with `threads` intra-op threads; returns {one_thread, team}
// counts and checks the output.
std::pair<int64_t, int64_t> steps_by_team(const Dims& dims, int threads, int runs) {
  cpu::ThreadAdaptation fixed_team(false);  // counts the teams of `threads`, however loaded the machine
  CpuDeviceOptions options;
  options.num_threads = threads;
  auto program = CpuProgram::build(square(dims), options);
  EXPECT_TRUE(program.ok()) << program.status().message();
  if (!program.ok()) return {-1, -1};
  Tensor x = random_tensor(dims, 7);
  for (int r = 0; r < runs; ++r) {
    auto out = (*program)->run({Value(x)});
    EXPECT_TRUE(out.ok()) << out.status().message();
    if (!out.ok()) return {-1, -1};
    const Tensor& y = (*out)[0].tensor;
    EXPECT_EQ(y.dims(), dims);
    for (int64_t i = 0; i < y.numel(); i += 997) EXPECT_FLOAT_EQ(y.data<float>()[i], x.data<float>()[i] * x.data<float>()[i]);
  }
  const auto& c = (*program)->step_team_counters();
  return {c.one_thread.load(), c.team.load()};
}

TEST(StepTeamTest, SmallStepRunsOnTheCallerAtTwoThreads) {
  // A GRU's input transpose size: 3200 floats, below the limit whether workers spin or block.
  EXPECT_EQ(steps_by_team({50, 1, 64}, 2, 3), std::make_pair(int64_t{3}, int64_t{0}));
}

TEST(StepTeamTest, LargeStepGetsTheTeam) {
  // 2^20 floats: above the limit under either wait policy.
  EXPECT_EQ(steps_by_team({1, 16, 256, 256}, 2, 2), std::make_pair(int64_t{0}, int64_t{2}));
}

TEST(StepTeamTest, OneThreadRunsNeverAskForATeam) {
  EXPECT_EQ(steps_by_team({1, 16, 256, 256}, 1, 2), std::make_pair(int64_t{2}, int64_t{0}));
}

}  // namespace
}  // namespace pyflame_rt
