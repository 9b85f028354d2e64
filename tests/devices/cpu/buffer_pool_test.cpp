// BufferPool on its own: aligned buffers, reuse of released ones that fit, none without
// reuse, buffers outliving their pool, trimming what a run did not use.
#include <gtest/gtest.h>

#include <cstdint>

#include "devices/cpu/buffer_pool.h"

namespace pyflame_rt {
namespace cpu {
namespace {

TEST(BufferPoolTest, AReleasedBufferServesTheNextFittingRequest) {
  auto counters = std::make_shared<BufferPoolCounters>();
  BufferPool pool(true, counters);
  void* first;
  {
    std::shared_ptr<void> a = pool.acquire(1000);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.get()) % 64, 0u);
    first = a.get();
    std::shared_ptr<void> copy = a;  // a second owner: the buffer stays out of the pool
    a.reset();
    EXPECT_EQ(pool.idle_buffers(), 0u);
  }
  EXPECT_EQ(pool.idle_buffers(), 1u);
  std::shared_ptr<void> b = pool.acquire(900);  // fits in the 1024-byte buffer
  EXPECT_EQ(b.get(), first);
  std::shared_ptr<void> c = pool.acquire(100);  // nothing idle fits
  EXPECT_NE(c.get(), first);
  EXPECT_EQ(counters->fresh, 2);
  EXPECT_EQ(counters->reused, 1);
  EXPECT_EQ(pool.acquire(0), nullptr);
}

TEST(BufferPoolTest, ABigIdleBufferServesASmallValueAndAMissFreesTheSmallerIdleOnes) {
  auto counters = std::make_shared<BufferPoolCounters>();
  BufferPool pool(true, counters);
  pool.acquire(1 << 20).reset();
  std::shared_ptr<void> small = pool.acquire(1000);  // takes the 1 MB buffer
  EXPECT_EQ(counters->reused, 1);
  pool.acquire(64).reset();
  pool.acquire(4096).reset();  // 64 idle, too small: freed before the fresh 4096
  EXPECT_EQ(pool.idle_buffers(), 1u);
  EXPECT_EQ(counters->fresh, 3);
}

TEST(BufferPoolTest, WithoutReuseEveryRequestIsAFreshBuffer) {
  auto counters = std::make_shared<BufferPoolCounters>();
  BufferPool pool(false, counters);
  for (int i = 0; i < 3; ++i) pool.acquire(4096).reset();
  EXPECT_EQ(pool.idle_buffers(), 0u);
  EXPECT_EQ(counters->fresh, 3);
  EXPECT_EQ(counters->reused, 0);
}

TEST(BufferPoolTest, ABufferMayOutliveItsPool) {
  std::shared_ptr<void> kept;
  {
    BufferPool pool(true);
    kept = pool.acquire(256);
    static_cast<char*>(kept.get())[255] = 1;
  }
  EXPECT_EQ(static_cast<char*>(kept.get())[255], 1);
  kept.reset();  // freed with the pool's state, no pool left to return to
}

TEST(BufferPoolTest, TrimmingFreesWhatTheLastRunDidNotUse) {
  BufferPool pool(true);
  {
    std::shared_ptr<void> a = pool.acquire(256), b = pool.acquire(1 << 16);  // run 1: both at once
  }
  pool.free_unused_since_last_run();
  EXPECT_EQ(pool.idle_buffers(), 2u);
  pool.acquire(256).reset();  // run 2 only the small one
  pool.free_unused_since_last_run();
  EXPECT_EQ(pool.idle_buffers(), 1u);
}

TEST(BufferPoolTest, TheCurrentPoolIsScopedPerThread) {
  BufferPool outer(true), inner(true);
  EXPECT_EQ(BufferPool::current(), nullptr);
  {
    BufferPool::Scope a(&outer);
    {
      BufferPool::Scope b(&inner);
      EXPECT_EQ(BufferPool::current(), &inner);
    }
    EXPECT_EQ(BufferPool::current(), &outer);
  }
  EXPECT_EQ(BufferPool::current(), nullptr);
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
