// The intra-op thread team must not burn cores between runs: after a run on two threads, an
// idle second costs (almost) no CPU time. OpenMP's workers spin for a short while after each
// parallel region (a few hundred microseconds, so back-to-back kernels start at once) and
// then sleep; a spin that never ends would show up here as ~1 s of CPU per idle second.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <thread>

#include "devices/cpu/cpu_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

TEST(IdleThreadsTest, ThreadTeamSleepsBetweenRuns) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 16, 32, 32})});
  g.initializers["w"] = random_tensor({16, 16, 3, 3}, 1);
  Node& conv = g.add_node("Conv", {"x", "w"}, {"y"}, "conv");
  conv.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({1, 16, 32, 32})});
  auto program = make_cpu_device(2)->compile(g);
  ASSERT_TRUE(program.ok()) << program.status().to_string();
  for (int i = 0; i < 20; ++i) {
    std::vector<Value> feed;
    feed.emplace_back(random_tensor({1, 16, 32, 32}, 2));
    ASSERT_TRUE((*program)->run(std::move(feed)).ok());
  }
  double before = process_cpu_seconds();
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double used = process_cpu_seconds() - before;
  // Spinning workers would use ~wall (one per extra thread); sleeping ones a few ms at most.
  EXPECT_LT(used, 0.2 * wall) << "idle threads used " << used << " s of CPU in " << wall << " s";
}

}  // namespace
}  // namespace pyflame_rt
