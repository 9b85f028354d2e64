// Graph outputs the caller pre-allocated (RunContext::preallocated, IOBinding): the CPU program
// writes them straight into the caller's buffers where the last writer is a native op in the
// plain layout, returns tensors on those buffers, and never lets the pool hand them out; the
// results equal a run without buffers in every executor and memory setting.
#include <gtest/gtest.h>

#include <cmath>

#include "devices/cpu/cpu_program.h"
#include "devices/cpu/cpu_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

using cpu::CpuProgram;

// y = x @ w (a graph output that Relu reads again), z = Relu(y), u = Hardmax(y) (a reference
// kernel; Erf, used here before, now has a native one).
Graph matmul_relu() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({4, 16})});
  g.initializers["w"] = random_tensor({16, 8}, 3);
  g.add_node("MatMul", {"x", "w"}, {"y"}, "mm");
  g.add_node("Relu", {"y"}, {"z"}, "relu");
  g.add_node("Hardmax", {"y"}, {"u"}, "hardmax");
  for (const char* o : {"y", "z", "u"}) g.outputs.push_back({o, DType::kFloat32, Shape::from_dims({4, 8})});
  return g;
}

struct Setting {
  const char* name;
  bool arena, parallel;
};

TEST(PreallocatedOutputsTest, NativeOutputsAreWrittenInPlaceAndEqualAnUnboundRun) {
  for (Setting s : {Setting{"arena", true, false}, Setting{"no_arena", false, false}, Setting{"parallel", true, true}}) {
    CpuDeviceOptions o;
    o.num_threads = 2;
    o.parallel_branches = s.parallel;
    o.memory_arena = s.arena;
    auto program = CpuProgram::build(matmul_relu(), o);
    ASSERT_TRUE(program.ok()) << program.status().to_string();
    Tensor x = random_tensor({4, 16}, 7);
    auto plain = (*program)->run({Value(x)});
    ASSERT_TRUE(plain.ok()) << plain.status().to_string();

    std::map<std::string, Tensor> bound;
    for (const char* name : {"y", "z", "u"}) bound[name] = Tensor(DType::kFloat32, {4, 8});
    RunContext ctx;
    ctx.preallocated = &bound;
    for (int run = 0; run < 2; ++run) {  // the second run: the arena's buffers are warm
      auto out = (*program)->run({Value(x)}, ctx);
      ASSERT_TRUE(out.ok()) << s.name << ": " << out.status().to_string();
      // MatMul and Relu are native: their outputs are on the caller's memory. Hardmax runs on its
      // reference kernel: its output is its own (the session copies it in).
      EXPECT_EQ((*out)[0].tensor.raw_data(), bound["y"].raw_data()) << s.name;
      EXPECT_EQ((*out)[1].tensor.raw_data(), bound["z"].raw_data()) << s.name;
      EXPECT_NE((*out)[2].tensor.raw_data(), bound["u"].raw_data()) << s.name;
      for (size_t k = 0; k < 3; ++k) {
        const Tensor& a = (*out)[k].tensor;
        const Tensor& b = (*plain)[k].tensor;
        ASSERT_EQ(a.dims(), b.dims());
        for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << s.name << " output " << k;
      }
    }
    // Later runs without buffers never get the caller's memory from the pool.
    std::vector<float> kept(bound["z"].data<float>(), bound["z"].data<float>() + bound["z"].numel());
    for (int run = 0; run < 3; ++run) ASSERT_TRUE((*program)->run({Value(random_tensor({4, 16}, 20 + run))}).ok());
    for (size_t i = 0; i < kept.size(); ++i) ASSERT_EQ(bound["z"].data<float>()[i], kept[i]) << s.name;
  }
}

TEST(PreallocatedOutputsTest, ABufferOfOtherDimsOrOverlappingAnInputIsNotWritten) {
  auto program = CpuProgram::build(matmul_relu(), CpuDeviceOptions{});
  ASSERT_TRUE(program.ok());
  Tensor x = random_tensor({4, 16}, 7);
  std::map<std::string, Tensor> bound;
  bound["y"] = Tensor(DType::kFloat32, {8, 4});  // the right size, other dims
  // z's buffer is the input's: written before MatMul read it all, y would be wrong.
  bound["z"] = Tensor::wrap(DType::kFloat32, {4, 8}, x.raw_data(), nullptr);
  RunContext ctx;
  ctx.preallocated = &bound;
  auto out = (*program)->run({Value(x)}, ctx);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_NE((*out)[0].tensor.raw_data(), bound["y"].raw_data());
  EXPECT_NE((*out)[1].tensor.raw_data(), x.raw_data());
  for (int64_t i = 0; i < bound["y"].numel(); ++i) ASSERT_EQ(bound["y"].data<float>()[i], 0.0f);
}

}  // namespace
}  // namespace pyflame_rt
