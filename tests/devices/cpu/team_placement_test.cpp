// A run's OpenMP worker that shares the calling thread's CPU moves to another CPU of its mask
// (devices/cpu/team_placement.h): which mask it takes for the move, and that a check leaves
// every thread's affinity as it found it.
#include "devices/cpu/team_placement.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <vector>

namespace pyflame_rt {
namespace cpu {
namespace {

cpu_set_t cpus(std::vector<int> list) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : list) CPU_SET(c, &set);
  return set;
}

TEST(TeamPlacementTest, AWorkerOnTheCallersCpuLeavesItForTheRestOfItsMask) {
  auto mask = mask_to_leave(cpus({0, 1, 2, 3}), 2, 2);
  ASSERT_TRUE(mask.has_value());
  const cpu_set_t expected = cpus({0, 1, 3});
  EXPECT_TRUE(CPU_EQUAL(&*mask, &expected));
}

TEST(TeamPlacementTest, AWorkerElsewhereOrConfinedToOneCpuStays) {
  EXPECT_FALSE(mask_to_leave(cpus({0, 1}), 0, 1).has_value()) << "already apart";
  EXPECT_FALSE(mask_to_leave(cpus({1}), 1, 1).has_value()) << "the user confined the process to one CPU";
  EXPECT_FALSE(mask_to_leave(cpus({0, 1}), 3, 3).has_value()) << "its mask does not hold the caller's CPU";
  EXPECT_FALSE(mask_to_leave(cpus({0, 1}), -1, -1).has_value()) << "sched_getcpu failed";
}

// Each thread of a team of `threads`: its affinity mask.
std::vector<cpu_set_t> team_masks(int threads) {
  std::vector<cpu_set_t> masks(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    sched_getaffinity(0, sizeof(cpu_set_t), &masks[static_cast<size_t>(omp_get_thread_num())]);
  }
  return masks;
}

TEST(TeamPlacementTest, ACheckLeavesEveryThreadsMaskAsItWas) {
  const int threads = 2;
  auto before = team_masks(threads);
  for (int i = 0; i < 50; ++i) {
    const int moved = spread_team(threads);
    EXPECT_GE(moved, 0);
    EXPECT_LE(moved, threads - 1);
  }
  auto after = team_masks(threads);
  for (int t = 0; t < threads; ++t) EXPECT_TRUE(CPU_EQUAL(&before[t], &after[t])) << "thread " << t;
}

// The worker put on the caller's CPU (confined there, then allowed its whole mask again: it
// stays until the scheduler moves it), the caller kept there: a check moves the worker off it,
// and the user's mask is back on every thread after.
TEST(TeamPlacementTest, AWorkerLeftOnTheCallersCpuIsMovedAtOnce) {
  cpu_set_t original;
  ASSERT_EQ(sched_getaffinity(0, sizeof(original), &original), 0);
  if (CPU_COUNT(&original) < 2) GTEST_SKIP() << "one CPU: nowhere to move";
  const int threads = 2;
  const int here = sched_getcpu();
  ASSERT_GE(here, 0);
  const cpu_set_t only_here = cpus({here});
  ASSERT_EQ(sched_setaffinity(0, sizeof(only_here), &only_here), 0);
  const unsigned long long moved_before = team_workers_moved();
  int moved = 0;
  // A sleeping worker may be woken on another CPU before the check finds it: a few tries.
  for (int i = 0; i < 20 && moved == 0; ++i) {
#pragma omp parallel num_threads(threads)
    {
      if (omp_get_thread_num() != 0) {
        sched_setaffinity(0, sizeof(only_here), &only_here);
        sched_setaffinity(0, sizeof(original), &original);
      }
    }
    moved = spread_team(threads);
  }
  EXPECT_EQ(moved, 1);
  EXPECT_EQ(team_workers_moved() - moved_before, 1u) << "the process-wide count";
  std::vector<int> where(threads, -1);
#pragma omp parallel num_threads(threads)
  { where[static_cast<size_t>(omp_get_thread_num())] = sched_getcpu(); }
  EXPECT_EQ(where[0], here);
  EXPECT_NE(where[1], here) << "the worker is back on the caller's CPU";
  ASSERT_EQ(sched_setaffinity(0, sizeof(original), &original), 0);
  auto after = team_masks(threads);
  for (int t = 0; t < threads; ++t) EXPECT_TRUE(CPU_EQUAL(&original, &after[t])) << "thread " << t;
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
