#include "compiler/memory_plan.h"

#include <limits>

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

// x -> a -> b -> c -> y: each value dies after its reader, so a chain needs two buffers.
TEST(MemoryPlanTest, ChainReusesTwoBuffers) {
  Graph g;
  g.inputs = {f32("x", {16, 16})};  // 1 KB values
  g.initializers["w"] = Tensor(DType::kFloat32, {16, 16});
  g.add_node("Relu", {"x"}, {"a"});
  g.add_node("Relu", {"a"}, {"b"});
  g.add_node("Add", {"b", "w"}, {"c"});
  g.add_node("Relu", {"c"}, {"y"});
  for (const char* v : {"a", "b", "c"}) g.value_info[v] = f32(v, {16, 16});
  g.outputs = {f32("y", {16, 16})};
  MemoryPlan plan = plan_memory(g);
  EXPECT_EQ(plan.weight_bytes, 1024);
  EXPECT_EQ(plan.no_reuse_bytes, 4 * 1024);
  EXPECT_EQ(plan.arena_bytes, 2 * 1024);
  EXPECT_NE(plan.offsets.at("a"), plan.offsets.at("b"));  // a is read while b is written
  EXPECT_EQ(plan.unknown_values, 0);
}

TEST(MemoryPlanTest, SymbolicShapesAreCountedAsUnknown) {
  Graph g;
  Shape sym;
  sym.dims = {Dim(std::string("batch")), Dim(4)};
  g.inputs = {{"x", DType::kFloat32, sym}};
  g.add_node("Relu", {"x"}, {"y"});
  g.outputs = {{"y", DType::kFloat32, sym}};
  MemoryPlan plan = plan_memory(g);
  EXPECT_EQ(plan.arena_bytes, 0);
  EXPECT_EQ(plan.unknown_values, 1);
}

// Shapes are the model's: a RandomUniform of shape [2^31] * 6 (2^186 elements) overflowed the
// size, then the sums (UBSan, kernel_run). Sizes and sums saturate; the model is simply larger
// than any limit. Two such values side by side saturate too (offset + size).
TEST(MemoryPlanTest, SizesPastInt64Saturate) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  Graph g;
  g.inputs = {f32("x", {4})};
  g.add_node("Relu", {"x"}, {"a"});
  g.add_node("Relu", {"x"}, {"b"});
  g.add_node("Add", {"a", "b"}, {"y"});
  const int64_t big = int64_t{1} << 31;
  g.value_info["a"] = f32("a", {big, big, big, big, big, big});
  g.value_info["b"] = f32("b", {int64_t{1} << 40, 1024});  // 2^52 bytes: fits, 2^53 with a
  g.outputs = {f32("y", {4})};
  MemoryPlan plan = plan_memory(g);
  EXPECT_EQ(plan.no_reuse_bytes, max);
  EXPECT_EQ(plan.arena_bytes, max);
  EXPECT_EQ(plan.needed_bytes(), max);
  EXPECT_EQ(plan.unknown_values, 0);
}

}  // namespace
}  // namespace pyflame_rt
