// Denormals flushed to zero during CPU runs (devices/cpu/denormals.h): in the scope on the
// calling thread and on its OpenMP workers, the caller's own setting back afterwards, and the
// CPU device's outputs with and without it.
#include "devices/cpu/denormals.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <limits>

#include "devices/cpu/cpu_device.h"

namespace pyflame_rt {
namespace {

TEST(DenormalsTest, ScopeFlushesOnTheCallerAndItsWorkersAndRestoresTheCaller) {
  ASSERT_FALSE(cpu::flushing_denormals()) << "the test process starts with IEEE denormals";
  {
    cpu::FlushDenormalsScope off(false, 2);
    EXPECT_FALSE(cpu::flushing_denormals());
  }
  {
    cpu::FlushDenormalsScope scope(true, 2);
    EXPECT_TRUE(cpu::flushing_denormals());
    std::atomic<int> flushing{0}, team{0};
#pragma omp parallel num_threads(2)
    {
      team.fetch_add(1);
      if (cpu::flushing_denormals()) flushing.fetch_add(1);
    }
    EXPECT_EQ(flushing.load(), team.load()) << "every thread of the team flushes";
  }
  EXPECT_FALSE(cpu::flushing_denormals()) << "the caller's MXCSR is restored";
  {
    // A run that keeps denormals, after one that flushed: its workers keep them too.
    cpu::FlushDenormalsScope off(false, 2);
    std::atomic<int> flushing{0};
#pragma omp parallel num_threads(2)
    if (cpu::flushing_denormals()) flushing.fetch_add(1);
    EXPECT_EQ(flushing.load(), 0);
  }
}

// 1e-20 * 1e-20 = 1e-40, a denormal: 0 when flushed, itself when not.
Expected<std::vector<Value>> square_of_tiny(bool flush) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({64})});
  g.add_node("Mul", {"x", "x"}, {"y"}, "square");
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
  CpuDeviceOptions options;
  options.num_threads = 2;
  options.flush_denormals = flush;
  ASSIGN_OR_RETURN(auto exe, make_cpu_device(options)->compile(g));
  std::vector<Value> feeds;
  feeds.emplace_back(Tensor::from_vector<float>({64}, std::vector<float>(64, 1e-20f)));
  return exe->run(feeds);
}

TEST(DenormalsTest, CpuDeviceFlushesDenormalsUnlessToldNot) {
  auto flushed = square_of_tiny(true);
  ASSERT_TRUE(flushed.ok()) << flushed.status().to_string();
  auto ieee = square_of_tiny(false);
  ASSERT_TRUE(ieee.ok()) << ieee.status().to_string();
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_EQ((*flushed)[0].tensor.data<float>()[i], 0.0f) << i;
    const float kept = (*ieee)[0].tensor.data<float>()[i];
    EXPECT_EQ(std::fpclassify(kept), FP_SUBNORMAL) << i << ": " << kept;
  }
  EXPECT_FALSE(cpu::flushing_denormals()) << "the run left the caller's MXCSR as it was";
}

}  // namespace
}  // namespace pyflame_rt
