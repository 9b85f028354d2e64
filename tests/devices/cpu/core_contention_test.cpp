// A run gives up its extra threads while the cores are contended (devices/cpu/core_contention.h):
// the decision from schedstat readings, and a real run beside busy threads that shrinks its team,
// builds primitives for the smaller team (ShapePlanCache keys plans by team) and still computes
// what the full team does.
#include "devices/cpu/core_contention.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/shape_plan_cache.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace cpu {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(CoreContentionTest, ParsesSchedstat) {
  auto r = parse_schedstat("123456789 4567 89\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->cpu_ns, 123456789u);
  EXPECT_EQ(r->wait_ns, 4567u);
  EXPECT_FALSE(parse_schedstat("").has_value());
  EXPECT_FALSE(parse_schedstat("12").has_value());
  EXPECT_FALSE(parse_schedstat("abc 1 2").has_value());
}

TEST(CoreContentionTest, ParsesProcStatsCpuLine) {
  auto r = parse_proc_stat_cpu("cpu  100 20 30 400 5 0 6 7 0 0\ncpu0 50 10 15 200 2 0 3 3 0 0\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->nice_ticks, 20u);
  EXPECT_EQ(r->total_ticks, 568u);
  EXPECT_FALSE(parse_proc_stat_cpu("cpu0 1 2 3 4 5 6 7 8").has_value());
  EXPECT_FALSE(parse_proc_stat_cpu("intr 1 2").has_value());
  EXPECT_FALSE(parse_proc_stat_cpu("cpu  1 2").has_value());
}

// Readings of a thread that ran `cpu_ms` and waited `wait_ms` in each 20 ms window.
struct Feeder {
  ContentionMonitor monitor;
  Clock::time_point now = Clock::now();
  SchedReading total;
  bool window(double cpu_ms, double wait_ms) {
    now += kContentionWindow;
    total.cpu_ns += static_cast<uint64_t>(cpu_ms * 1e6);
    total.wait_ns += static_cast<uint64_t>(wait_ms * 1e6);
    return monitor.update(now, total);
  }
};

TEST(CoreContentionTest, AQuietThreadIsNeverContended) {
  Feeder f;
  for (int i = 0; i < 200; ++i) EXPECT_FALSE(f.window(20, 0.05)) << "window " << i;
  EXPECT_LT(f.monitor.smoothed_share(), 0.01);
}

TEST(CoreContentionTest, WaitingForACoreShrinksTheTeamUntilTheHoldEnds) {
  Feeder f;
  f.window(20, 0);  // the first reading only sets the base
  EXPECT_FALSE(f.window(12, 8)) << "one window at 40% smooths to 20%, under 30%";
  EXPECT_TRUE(f.window(12, 8)) << "two in a row: 30%, contended";
  // Held for kContendedHold even when the shrunk team no longer waits...
  int windows_held = 1;
  while (f.window(20, 0)) ++windows_held;
  EXPECT_EQ(windows_held * kContentionWindow, kContendedHold);
  // ...then the full team again, and a window of waiting shrinks it at once if the load stayed.
  Feeder g;
  g.window(20, 0);
  g.window(12, 8);
  ASSERT_TRUE(g.window(12, 8));
  while (g.window(12, 8)) {
  }
  EXPECT_TRUE(g.window(12, 8)) << "the smoothed share is kept across the hold";
}

// Two cores for 20 ms are 4 ticks of 10 ms; `niced` of them ran niced processes.
struct SystemFeeder {
  Feeder f;
  SystemCpuReading system;
  bool window(double cpu_ms, double wait_ms, uint64_t niced) {
    system.nice_ticks += niced;
    system.total_ticks += 4;
    f.now += kContentionWindow;
    f.total.cpu_ns += static_cast<uint64_t>(cpu_ms * 1e6);
    f.total.wait_ns += static_cast<uint64_t>(wait_ms * 1e6);
    return f.monitor.update(f.now, f.total, system);
  }
};

TEST(CoreContentionTest, WaitingBesideNicedWorkDoesNotShrinkTheTeam) {
  SystemFeeder s;
  s.window(20, 0, 1);
  for (int i = 0; i <= 100; ++i) {  // ends on a window with a niced tick
    EXPECT_FALSE(s.window(10, 10, i % 4 == 0 ? 1 : 0)) << "window " << i << ": niced work took ~6% of the cores";
  }
  EXPECT_GT(s.f.monitor.smoothed_share(), kContendedShare);
  EXPECT_GT(s.f.monitor.niced_share(), kNicedShareLimit);
  // The niced work stops and the waiting goes on (other work at nice 0): contended once the
  // niced share has decayed under the limit.
  int windows = 0;
  while (!s.window(10, 10, 0)) ASSERT_LT(++windows, 100);
  EXPECT_LT(s.f.monitor.niced_share(), kNicedShareLimit);
  EXPECT_GE(windows, 3) << "the niced share decays over windows, not at once";
}

TEST(CoreContentionTest, WithoutNicedWorkTheSystemReadingChangesNothing) {
  SystemFeeder s;
  s.window(20, 0, 0);
  EXPECT_FALSE(s.window(12, 8, 0));
  EXPECT_TRUE(s.window(12, 8, 0));
  EXPECT_DOUBLE_EQ(s.f.monitor.niced_share(), 0.0);
}

TEST(CoreContentionTest, ALastingLoadDoublesTheHoldAndAQuietTrialResetsIt) {
  Feeder f;
  f.window(20, 0);
  f.window(12, 8);
  ASSERT_TRUE(f.window(12, 8));
  std::vector<std::chrono::milliseconds> holds;
  for (int trial = 0; trial < 6; ++trial) {
    int windows = 1;
    while (f.window(12, 8)) ++windows;  // held; then the full team's trial window...
    holds.push_back(windows * kContentionWindow);
    ASSERT_TRUE(f.window(12, 8)) << "...still waits: shrunk again at once";
  }
  EXPECT_EQ(holds, (std::vector<std::chrono::milliseconds>{kContendedHold, 2 * kContendedHold, 4 * kContendedHold,
                                                           kMaxContendedHold, kMaxContendedHold, kMaxContendedHold}));
  while (f.window(12, 8)) {
  }
  // The trial runs quiet: the load is gone, and a later load starts from the shortest hold.
  while (f.monitor.smoothed_share() >= kContendedShare) ASSERT_FALSE(f.window(20, 0));
  EXPECT_FALSE(f.window(20, 0));
  EXPECT_EQ(f.monitor.hold(), kContendedHold);
}

TEST(CoreContentionTest, WindowsSpentMostlyAsleepAddUpUntilThereIsEnoughToJudge) {
  Feeder f;
  f.window(20, 0);
  EXPECT_FALSE(f.window(0.5, 1.0)) << "1.5 ms runnable: too little to judge";
  EXPECT_FALSE(f.window(0.2, 0.1)) << "1.8 ms runnable since the last judged window: still too little";
  EXPECT_DOUBLE_EQ(f.monitor.smoothed_share(), 0.0);
  EXPECT_TRUE(f.window(0.3, 0.5)) << "2.6 ms runnable, 1.6 of it waiting: 62%, smoothed 31%";
}

TEST(CoreContentionTest, TurnedOffItNeverShrinks) {
  ThreadAdaptation off(false);
  EXPECT_FALSE(thread_adaptation_enabled());
  EXPECT_EQ(uncontended_threads(2), 2);
}

TEST(CoreContentionTest, OneThreadIsNeverShrunkFurther) { EXPECT_EQ(uncontended_threads(1), 1); }

TEST(CoreContentionTest, PlansAreKeptPerTeamSize) {
  struct Plan {
    int team;
  };
  ShapePlanCache<Plan> cache;
  int builds = 0;
  auto build = [&] {
    ++builds;
    return std::make_shared<Plan>(Plan{RunTeam::current()});
  };
  auto in_run = [&](int team) {
    RunTeam run(team);
    return cache.get_or_build({1, 8}, build);
  };
  auto two = in_run(2);
  auto one = in_run(1);
  auto one_again = in_run(1);
  EXPECT_EQ(RunTeam::current(), 0) << "outside a run again";
  ASSERT_TRUE(two.ok() && one.ok() && one_again.ok());
  EXPECT_EQ((*two)->team, 2);
  EXPECT_EQ((*one)->team, 1);
  EXPECT_EQ(one->get(), one_again->get());
  EXPECT_EQ(builds, 2);
  int visited = 0;
  cache.for_each([&](const Dims&, const std::shared_ptr<const Plan>& p) {
    ++visited;
    EXPECT_EQ(p->team, 2) << "the largest team's plan of the key (what an export writes)";
  });
  EXPECT_EQ(visited, 1);
}

// Busy threads on every core (and as many again) for the lifetime of the object.
class BusyCores {
 public:
  BusyCores() {
    const unsigned n = 2 * std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        volatile uint64_t x = 0;
        while (!stop_.load(std::memory_order_relaxed)) x = x + 1;
      });
    }
  }
  ~BusyCores() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// A 3x3 convolution, 64 channels on 64x64 (151 M multiply-adds: milliseconds a run, past
// kMinShrinkableRun).
Graph conv_graph() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 64, 64, 64})});
  g.initializers["w"] = random_tensor({64, 64, 3, 3}, 1);
  Node& conv = g.add_node("Conv", {"x", "w"}, {"y"}, "conv");
  conv.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({1, 64, 64, 64})});
  return g;
}

TEST(CoreContentionTest, ARunBesideBusyCoresUsesOneThreadAndComputesTheSame) {
  auto program = make_cpu_device(2)->compile(conv_graph());
  ASSERT_TRUE(program.ok()) << program.status().to_string();
  const Tensor x = random_tensor({1, 64, 64, 64}, 2);
  auto run = [&]() -> Tensor {
    std::vector<Value> feed;
    feed.emplace_back(x);
    auto out = (*program)->run(std::move(feed));
    EXPECT_TRUE(out.ok()) << out.status().to_string();
    return out.ok() ? (*out)[0].tensor : Tensor();
  };
  ThreadAdaptation on(true);  // the test runner turns it off for the other tests
  const Tensor full_team = run();
  const uint64_t before = contended_runs();
  Tensor shrunk;
  {
    BusyCores busy;
    // The calling thread must wait for a core for a few windows first; 10 s is far more.
    for (auto end = Clock::now() + std::chrono::seconds(10); Clock::now() < end && contended_runs() == before;) {
      Tensor y = run();
      if (contended_runs() > before) shrunk = y;
    }
  }
  ASSERT_GT(contended_runs(), before) << "no run was shrunk beside " << 2 * std::thread::hardware_concurrency()
                                      << " busy threads";
  ASSERT_EQ(shrunk.numel(), full_team.numel());
  double worst = 0;
  for (int64_t i = 0; i < full_team.numel(); ++i) {
    const float a = full_team.data<float>()[i], b = shrunk.data<float>()[i];
    worst = std::max(worst, std::abs(double(a) - double(b)) / std::max(1.0, std::abs(double(a))));
  }
  EXPECT_LT(worst, 1e-5) << "one thread and two computed different convolutions";
}

// A run far shorter than a scheduler's time slice seldom meets a descheduled teammate, and
// shrinking it costs more than it saves: beside the same busy threads a program of
// microseconds a run keeps its team.
TEST(CoreContentionTest, AShortProgramKeepsItsTeamBesideBusyCores) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({4, 256})});
  g.add_node("Relu", {"x"}, {"y"}, "relu");
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({4, 256})});
  auto program = make_cpu_device(2)->compile(g);
  ASSERT_TRUE(program.ok()) << program.status().to_string();
  const Tensor x = random_tensor({4, 256}, 3);
  ThreadAdaptation on(true);
  const uint64_t before = contended_runs();
  int runs = 0;
  {
    BusyCores busy;
    for (auto end = Clock::now() + std::chrono::seconds(1); Clock::now() < end; ++runs) {
      std::vector<Value> feed;
      feed.emplace_back(x);
      auto out = (*program)->run(std::move(feed));
      ASSERT_TRUE(out.ok()) << out.status().to_string();
    }
  }
  EXPECT_GT(runs, 10);
  // At most its first run, whose length is not known yet.
  EXPECT_LE(contended_runs() - before, 1u) << "runs of microseconds were shrunk";
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
