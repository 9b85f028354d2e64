// The CPU device's buffer pool (devices/cpu/buffer_pool.h) under every memory setting:
// outputs equal the reference's and each other's, outputs the caller holds survive later
// runs, the arena allocates nothing after the first run, concurrent runs stay correct, and
// without reuse every output is its own allocation.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "devices/ref/ref_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/cpu/cpu_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

using cpu::CpuProgram;

const Dims kInput = {1, 8, 12, 12};

// Convolutions and eltwise ops whose outputs die at different steps: a residual Add, a value
// read by two steps (r1), an intermediate that is also a graph output (r2), a conv summed in
// place into its residual (y into z), and a pool at the end.
Graph conv_chain() {
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports["pyflame_rt"] = 1;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims(kInput)});
  uint32_t seed = 10;
  for (const char* w : {"w1", "w2", "w3", "w4"}) g.initializers[w] = random_tensor({8, 8, 3, 3}, seed++);
  g.initializers["b1"] = random_tensor({8}, seed++);
  g.initializers["b4"] = random_tensor({8}, seed++);
  auto conv = [&](const std::string& op, std::vector<std::string> in, const std::string& out) -> Node& {
    Node& n = g.add_node(op, std::move(in), {out}, out);
    n.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
    return n;
  };
  conv("Conv", {"x", "w1", "b1"}, "c1");
  g.add_node("Relu", {"c1"}, {"r1"}, "r1");
  conv("Conv", {"r1", "w2"}, "c2");
  g.add_node("Add", {"c2", "r1"}, {"s"}, "s");
  g.add_node("Relu", {"s"}, {"r2"}, "r2");
  conv("Conv", {"r2", "w3"}, "z");
  Node& fused = conv("FusedConv", {"r2", "w4", "b4", "z"}, "y");
  fused.domain = "pyflame_rt";
  fused.attributes["activation"] = Attribute::make_string("Relu");
  Node& pool = g.add_node("MaxPool", {"y"}, {"p"}, "p");
  pool.attributes["kernel_shape"] = Attribute::make_ints({2, 2});
  pool.attributes["strides"] = Attribute::make_ints({2, 2});
  g.outputs.push_back({"p", DType::kFloat32, Shape::unknown_rank()});
  g.outputs.push_back({"r2", DType::kFloat32, Shape::unknown_rank()});
  return g;
}

std::vector<Value> feed(uint32_t seed) {
  std::vector<Value> v;
  v.emplace_back(random_tensor(kInput, seed));
  return v;
}

double max_normalised_error(const Tensor& a, const Tensor& b) {
  double scale = 1e-6, err = 0;
  for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(b.data<float>()[i])));
  for (int64_t i = 0; i < b.numel(); ++i) err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  return err / scale;
}

bool same_bits(const std::vector<Value>& a, const std::vector<Value>& b) {
  if (a.size() != b.size()) return false;
  for (size_t o = 0; o < a.size(); ++o) {
    const Tensor& x = a[o].tensor;
    const Tensor& y = b[o].tensor;
    if (x.dims() != y.dims()) return false;
    for (int64_t i = 0; i < x.numel(); ++i) if (x.data<float>()[i] != y.data<float>()[i]) return false;
  }
  return true;
}

struct Setting {
  const char* name;
  bool reuse, arena, parallel;
};
const Setting kSettings[] = {{"reuse", true, false, false},          {"arena", true, true, false},
                             {"no_reuse", false, false, false},      {"no_reuse_arena", false, true, false},
                             {"arena_parallel", true, true, true},   {"reuse_parallel", true, false, true}};

std::unique_ptr<CpuProgram> build(const Setting& s) {
  CpuDeviceOptions o;
  o.num_threads = 2;
  o.parallel_branches = s.parallel;
  o.memory_reuse = s.reuse;
  o.memory_arena = s.arena;
  auto p = CpuProgram::build(conv_chain(), o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(*p) : nullptr;
}

std::vector<Value> reference(uint32_t seed) {
  auto ref = make_ref_device()->compile(conv_chain());
  EXPECT_TRUE(ref.ok());
  auto out = (*ref)->run(feed(seed));
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return *out;
}

TEST(MemoryReuseTest, EverySettingMatchesTheReferenceAndTheOthers) {
  std::vector<std::vector<Value>> first;  // per run, the first setting's outputs
  for (const Setting& s : kSettings) {
    auto program = build(s);
    ASSERT_TRUE(program);
    for (uint32_t run = 0; run < 3; ++run) {
      auto out = program->run(feed(run));
      ASSERT_TRUE(out.ok()) << s.name << ": " << out.status().to_string();
      std::vector<Value> ref = reference(run);
      for (size_t o = 0; o < ref.size(); ++o) {
        EXPECT_LT(max_normalised_error((*out)[o].tensor, ref[o].tensor), 1e-5) << s.name << " run " << run << " output " << o;
      }
      if (first.size() <= run) {
        first.push_back(*out);
      } else {
        EXPECT_TRUE(same_bits(*out, first[run])) << s.name << " run " << run << " differs from " << kSettings[0].name;
      }
    }
  }
}

TEST(MemoryReuseTest, OutputsHeldByTheCallerSurviveLaterRuns) {
  for (const Setting& s : kSettings) {
    auto program = build(s);
    ASSERT_TRUE(program);
    auto held = program->run(feed(1));
    ASSERT_TRUE(held.ok());
    std::vector<Value> copy;
    for (const Value& v : *held) copy.emplace_back(v.tensor.clone());
    for (uint32_t run = 2; run < 6; ++run) ASSERT_TRUE(program->run(feed(run)).ok());
    EXPECT_TRUE(same_bits(*held, copy)) << s.name << ": a later run overwrote an output the caller holds";
  }
}

TEST(MemoryReuseTest, TheArenaAllocatesNothingAfterTheFirstRun) {
  auto program = build({"arena", true, true, false});
  ASSERT_TRUE(program);
  const auto& counters = program->buffer_counters();
  ASSERT_TRUE(program->run(feed(1)).ok());
  int64_t fresh = counters.fresh, reused = counters.reused;
  EXPECT_GT(fresh, 0);
  EXPECT_GT(reused, 0) << "a buffer whose value died should serve a later output of the same size";
  for (uint32_t run = 2; run < 5; ++run) ASSERT_TRUE(program->run(feed(run)).ok());
  EXPECT_EQ(counters.fresh, fresh);
  EXPECT_EQ(counters.reused, reused + 3 * (fresh + reused));  // every output of a later run reuses
}

TEST(MemoryReuseTest, TheDefaultPoolReusesWithinARunAndStartsAfreshEachRun) {
  auto program = build({"reuse", true, false, false});
  ASSERT_TRUE(program);
  const auto& counters = program->buffer_counters();
  ASSERT_TRUE(program->run(feed(1)).ok());
  int64_t fresh = counters.fresh, reused = counters.reused;
  EXPECT_GT(reused, 0);
  ASSERT_TRUE(program->run(feed(2)).ok());
  EXPECT_EQ(counters.fresh, 2 * fresh);  // the first run's buffers went back to the system
  EXPECT_EQ(counters.reused, 2 * reused);
}

TEST(MemoryReuseTest, WithoutReuseEveryOutputIsItsOwnAllocation) {
  auto reusing = build({"reuse", true, false, false});
  ASSERT_TRUE(reusing);
  ASSERT_TRUE(reusing->run(feed(1)).ok());
  int64_t outputs = reusing->buffer_counters().fresh + reusing->buffer_counters().reused;
  // c1 r1 c2 r2 z p: s is written over c2 (its last read) and y summed into z, in place; and
  // the plain copies of the graph outputs p and r2 handed to the caller (pooled_tensor).
  EXPECT_EQ(outputs, 8);
  for (const Setting& s : {Setting{"no_reuse", false, false, false}, Setting{"no_reuse_arena", false, true, false}}) {
    auto program = build(s);
    ASSERT_TRUE(program);
    for (int run = 1; run <= 2; ++run) {
      ASSERT_TRUE(program->run(feed(1)).ok());
      EXPECT_EQ(program->buffer_counters().fresh, run * outputs) << s.name;
      EXPECT_EQ(program->buffer_counters().reused, 0) << s.name;
    }
  }
}

TEST(MemoryReuseTest, ConcurrentRunsFromTwoThreadsGiveCorrectResults) {
  std::vector<std::vector<Value>> expected;
  for (uint32_t seed = 0; seed < 4; ++seed) expected.push_back(reference(seed));
  for (const Setting& s : kSettings) {
    auto program = build(s);
    ASSERT_TRUE(program);
    std::atomic<int> wrong{0}, failed{0};
    auto worker = [&](uint32_t first_seed) {
      for (int i = 0; i < 12; ++i) {
        uint32_t seed = (first_seed + static_cast<uint32_t>(i)) % 4;
        auto out = program->run(feed(seed));
        if (!out.ok()) { ++failed; continue; }
        for (size_t o = 0; o < out->size(); ++o) {
          if (max_normalised_error((*out)[o].tensor, expected[seed][o].tensor) > 1e-5) ++wrong;
        }
      }
    };
    std::thread a(worker, 0), b(worker, 1);
    a.join();
    b.join();
    EXPECT_EQ(failed, 0) << s.name;
    EXPECT_EQ(wrong, 0) << s.name;
  }
}

}  // namespace
}  // namespace pyflame_rt
