// The wait policy chosen for libgomp before it loads (devices/cpu/omp_wait_policy.h): a
// deterministic function of the user's variables and the load figures, given here.
#include "devices/cpu/omp_wait_policy.h"

#include <gtest/gtest.h>

namespace pyflame_rt {
namespace cpu {
namespace {

LoadFigures figures(double load_1min, int runnable_others, int cpus) {
  LoadFigures f;
  f.load_1min = load_1min;
  f.runnable_others = runnable_others;
  f.online_cpus = cpus;
  return f;
}

TEST(OmpWaitPolicyTest, PassiveWhenTheLoadAverageReachesTheCpus) {
  auto s = choose_omp_wait_setting(nullptr, nullptr, figures(2.0, 0, 2));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->name, "OMP_WAIT_POLICY");
  EXPECT_EQ(s->value, "passive");
  EXPECT_TRUE(choose_omp_wait_setting(nullptr, nullptr, figures(17.5, 1, 2)).has_value());
}

TEST(OmpWaitPolicyTest, PassiveWhenRunnableProcessesReachTheCpusBeforeTheAverageDoes) {
  // Two busy processes started a second ago: the 1-minute average is still low.
  auto s = choose_omp_wait_setting(nullptr, nullptr, figures(0.1, 2, 2));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->value, "passive");
}

TEST(OmpWaitPolicyTest, LibgompDefaultOnAQuietMachine) {
  EXPECT_FALSE(choose_omp_wait_setting(nullptr, nullptr, figures(1.9, 1, 2)).has_value());
  EXPECT_FALSE(choose_omp_wait_setting(nullptr, nullptr, figures(3.0, 3, 4)).has_value());
  EXPECT_TRUE(choose_omp_wait_setting(nullptr, nullptr, figures(4.0, 3, 4)).has_value());
}

TEST(OmpWaitPolicyTest, LibgompDefaultWhenTheLoadIsUnknown) {
  EXPECT_FALSE(choose_omp_wait_setting(nullptr, nullptr, figures(-1, -1, 2)).has_value());
  EXPECT_FALSE(choose_omp_wait_setting(nullptr, nullptr, figures(9.0, 9, 0)).has_value());
  // One known figure is enough.
  EXPECT_TRUE(choose_omp_wait_setting(nullptr, nullptr, figures(-1, 2, 2)).has_value());
  EXPECT_TRUE(choose_omp_wait_setting(nullptr, nullptr, figures(2.5, -1, 2)).has_value());
}

TEST(OmpWaitPolicyTest, TheUsersVariablesStand) {
  LoadFigures loaded = figures(20.0, 20, 2);
  EXPECT_FALSE(choose_omp_wait_setting("active", nullptr, loaded).has_value());
  EXPECT_FALSE(choose_omp_wait_setting(nullptr, "300000", loaded).has_value());
  EXPECT_FALSE(choose_omp_wait_setting("", nullptr, loaded).has_value());  // set, though empty
}

TEST(OmpWaitPolicyTest, ReadsThisMachinesFigures) {
  LoadFigures f = read_load_figures();
  EXPECT_GE(f.online_cpus, 1);
  EXPECT_GE(f.load_1min, 0.0);
  EXPECT_GE(f.runnable_others, 0);  // this test's own thread was running when it read them
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
