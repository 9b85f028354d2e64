// ShapePlanCache (devices/cpu/shape_plan_cache.h): hits, misses, LRU eviction within its
// capacity, failed builds not cached, null plans cached, plans alive after eviction while
// held, for_each over the entries, and concurrent get_or_build from several threads.
#include "devices/cpu/shape_plan_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

namespace pyflame_rt {
namespace cpu {
namespace {

struct Plan {
  int64_t value = 0;
};

// A builder that counts its calls and makes a plan holding the sum of the key's dims.
struct CountingBuilder {
  std::atomic<int> calls{0};
  auto operator()(const Dims& key) {
    return [this, key]() -> Expected<std::shared_ptr<Plan>> {
      ++calls;
      auto p = std::make_shared<Plan>();
      for (int64_t d : key) p->value += d;
      return p;
    };
  }
};

TEST(ShapePlanCacheTest, BuildsOncePerKeyAndCountsHitsAndMisses) {
  ShapePlanCache<Plan> cache;
  CountingBuilder build;
  auto a = cache.get_or_build({1, 2}, build({1, 2}));
  auto b = cache.get_or_build({1, 2}, build({1, 2}));
  auto c = cache.get_or_build({3, 4}, build({3, 4}));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ((*a)->value, 3);
  EXPECT_EQ((*c)->value, 7);
  EXPECT_EQ(a->get(), b->get()) << "a hit returns the cached plan itself";
  EXPECT_EQ(build.calls.load(), 2);
  PlanCacheCounters n = cache.counters();
  EXPECT_EQ(n.hits, 1u);
  EXPECT_EQ(n.misses, 2u);
  EXPECT_EQ(n.evictions, 0u);
  EXPECT_EQ(n.size, 2u);
}

TEST(ShapePlanCacheTest, EvictsTheLeastRecentlyUsedAndKeepsHeldPlansAlive) {
  ShapePlanCache<Plan> cache(2);
  CountingBuilder build;
  auto first = cache.get_or_build({1}, build({1}));
  ASSERT_TRUE(first.ok());
  std::shared_ptr<const Plan> held = *first;
  ASSERT_TRUE(cache.get_or_build({2}, build({2})).ok());
  ASSERT_TRUE(cache.get_or_build({1}, build({1})).ok());  // {1} is now the most recent
  ASSERT_TRUE(cache.get_or_build({3}, build({3})).ok());  // evicts {2}
  EXPECT_EQ(build.calls.load(), 3);
  PlanCacheCounters n = cache.counters();
  EXPECT_EQ(n.size, 2u);
  EXPECT_EQ(n.evictions, 1u);
  std::map<Dims, int64_t> seen;
  cache.for_each([&](const Dims& k, const std::shared_ptr<const Plan>& p) { seen[k] = p->value; });
  EXPECT_EQ(seen, (std::map<Dims, int64_t>{{{1}, 1}, {{3}, 3}}));
  // {2} was evicted: asking again builds it again, which evicts {1} (least recent now).
  ASSERT_TRUE(cache.get_or_build({2}, build({2})).ok());
  EXPECT_EQ(build.calls.load(), 4);
  ASSERT_TRUE(cache.get_or_build({1}, build({1})).ok());
  EXPECT_EQ(build.calls.load(), 5);
  // The plan a run held across the eviction of {1} is still valid.
  EXPECT_EQ(held->value, 1);
  EXPECT_EQ(cache.counters().size, 2u);
}

TEST(ShapePlanCacheTest, AFailedBuildIsNotCachedButANullPlanIs) {
  ShapePlanCache<Plan> cache;
  int calls = 0;
  auto failing = [&]() -> Expected<std::shared_ptr<Plan>> {
    ++calls;
    return runtime_error("no kernel for shape [5]");
  };
  auto r1 = cache.get_or_build({5}, failing);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().to_string().find("no kernel for shape [5]"), std::string::npos);
  EXPECT_EQ(cache.counters().size, 0u);
  auto r2 = cache.get_or_build({5}, [&] {
    ++calls;
    return std::make_shared<Plan>(Plan{42});
  });
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)->value, 42);
  EXPECT_EQ(calls, 2) << "the failure was retried, not remembered";
  // A thrown exception leaves the cache unchanged too.
  EXPECT_THROW(cache.get_or_build({6}, []() -> std::shared_ptr<Plan> { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_EQ(cache.counters().size, 1u);
  // A null plan ("use the reference kernel for this shape") is an answer: cached.
  int null_calls = 0;
  auto null_builder = [&] {
    ++null_calls;
    return std::shared_ptr<Plan>();
  };
  auto n1 = cache.get_or_build({7}, null_builder);
  auto n2 = cache.get_or_build({7}, null_builder);
  ASSERT_TRUE(n1.ok() && n2.ok());
  EXPECT_EQ(*n1, nullptr);
  EXPECT_EQ(null_calls, 1);
}

TEST(ShapePlanCacheTest, ConcurrentCallersShareOneBuildPerKey) {
  ShapePlanCache<Plan> cache(4);
  CountingBuilder build;
  const int kThreads = 4, kRounds = 200;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        // Three keys shared by all threads, plus keys of its own every 50 rounds (evictions).
        Dims key = i % 50 == 49 ? Dims{100 + t, i} : Dims{i % 3};
        auto p = cache.get_or_build(key, build(key));
        int64_t want = 0;
        for (int64_t d : key) want += d;
        if (!p.ok() || !*p || (*p)->value != want) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  PlanCacheCounters n = cache.counters();
  EXPECT_EQ(n.hits + n.misses, static_cast<uint64_t>(kThreads * kRounds));
  EXPECT_EQ(n.misses, static_cast<uint64_t>(build.calls.load()));
  EXPECT_LE(n.size, 4u);
  // 4 threads x 4 own keys, 3 shared keys: far fewer builds than calls (the shared keys are
  // rebuilt only after an own key evicted them).
  EXPECT_LT(n.misses, static_cast<uint64_t>(kThreads * kRounds / 4));
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
