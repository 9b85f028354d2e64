// The wait setting chosen for libgomp before it loads (devices/cpu/omp_wait_policy.h): a brief
// spin unless the user chose a policy or a spin count.
#include "devices/cpu/omp_wait_policy.h"

#include <gtest/gtest.h>

namespace pyflame_rt {
namespace cpu {
namespace {

TEST(OmpWaitPolicyTest, WorkersSpinBrieflyUnlessTheUserChose) {
  auto s = choose_omp_wait_setting(nullptr, nullptr);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->name, "GOMP_SPINCOUNT");
  EXPECT_EQ(s->value, kBriefSpinCount);
  EXPECT_FALSE(choose_omp_wait_setting("active", nullptr).has_value());
  EXPECT_FALSE(choose_omp_wait_setting("passive", nullptr).has_value());
  EXPECT_FALSE(choose_omp_wait_setting(nullptr, "300000").has_value());
  EXPECT_FALSE(choose_omp_wait_setting("", nullptr).has_value());  // set, though empty
  EXPECT_FALSE(choose_omp_wait_setting(nullptr, "").has_value());
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
