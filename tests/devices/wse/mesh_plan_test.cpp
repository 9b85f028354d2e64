// The placed-program data and the generation constants: a tiny hand-built plan (one GEMV on a
// 2 x 2 block) is self-consistent, and the published figures are what wse.md says.
#include <gtest/gtest.h>

#include "devices/wse/mesh_plan.h"
#include "devices/wse/wse_spec.h"

namespace pyflame_rt {
namespace {

TEST(WseSpec, GenerationConstantsMatchThePublishedFigures) {
  const WseSpec& w2 = wse_spec(WseGeneration::kWse2);
  const WseSpec& w3 = wse_spec(WseGeneration::kWse3);
  EXPECT_EQ(w2.fabric_width, 757);
  EXPECT_EQ(w2.fabric_height, 996);
  EXPECT_EQ(w2.usable_width, 750);
  EXPECT_EQ(w2.usable_height, 994);
  EXPECT_EQ(w3.fabric_width, 762);
  EXPECT_EQ(w3.fabric_height, 1176);
  EXPECT_EQ(w3.usable_width, 755);
  EXPECT_EQ(w3.usable_height, 1174);
  EXPECT_EQ(w3.sram_bytes_per_pe, 48 * 1024);
  EXPECT_EQ(w3.sram_banks * w3.sram_bank_bytes, w3.sram_bytes_per_pe);
  EXPECT_EQ(w2.simd_fp16, 4);
  EXPECT_EQ(w3.simd_fp16, 8);
  EXPECT_EQ(w3.program_colors(), 18);
  EXPECT_DOUBLE_EQ(w3.clock_hz, 850e6);
  EXPECT_DOUBLE_EQ(w3.cycles_to_us(850), 1.0);
  // 7 Gb/s x 16 channels moves 14 MB in 1 ms, plus the 200 us transaction overhead.
  EXPECT_NEAR(w3.host_io_us(14e6), 1000 + 200, 1e-6);
}

TEST(WseSpec, OptionsReduceTheFabricAndRejectUnknownKeys) {
  auto s = wse_spec_with_options(wse_spec(WseGeneration::kWse3), {{"fabric", "64x48"}, {"systems", "2"}});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->usable_width, 64);
  EXPECT_EQ(s->usable_height, 48);
  EXPECT_EQ(s->fabric_width, 71);  // memcpy margin: width + 7, height + 2
  EXPECT_EQ(s->fabric_height, 50);
  EXPECT_EQ(s->systems, 2);
  auto g = wse_spec_with_options(wse_spec(WseGeneration::kWse3), {{"generation", "wse2"}});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->name, "wse2");
  auto bad = wse_spec_with_options(wse_spec(WseGeneration::kWse3), {{"fabrik", "1x1"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("fabrik"), std::string::npos);
  EXPECT_NE(bad.status().message().find("known: fabric"), std::string::npos);
  auto big = wse_spec_with_options(wse_spec(WseGeneration::kWse3), {{"fabric", "2000x10"}});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("2000"), std::string::npos);
  EXPECT_FALSE(wse_spec_by_name("wse9").ok());
  EXPECT_EQ(wse_spec_by_name("wse")->name, "wse3");
}

// A GEMV y[1,8] = x[1,6] W[6,8] on a 2 x 2 block: K over 2 columns, N over 2 rows.
TEST(MeshPlan, TinyGemvPlanIsConsistent) {
  MeshOp op;
  op.node = "fc";
  op.op_type = "MatMul";
  op.kind = MeshOpKind::kGemm;
  op.gemm = {1, 6, 8, 1};
  op.split.k_parts = 2;
  op.split.n_parts = 2;
  TensorTiling w{"W", "weight", {6, 8}, /*row_axis=*/1, /*col_axis=*/0, 2, 2, "m", 3 * 4 * 4};
  TensorTiling x{"x", "input", {1, 6}, -1, 1, 1, 2, "rows", 3 * 4};
  TensorTiling y{"y", "output", {1, 8}, 1, -1, 2, 1, "", 4 * 4};
  op.tensors = {w, x, y};
  op.buffers = {{"w_fc", "weight", 12, 48}, {"x_fc", "input", 3, 12}, {"y_fc", "output", 4, 16}};
  op.routes = {{0, "col_broadcast", {0, 0, 2, 2}, {"NORTH"}, {"RAMP", "SOUTH"}, "x"},
               {1, "row_reduce", {0, 0, 2, 2}, {"WEST"}, {"EAST"}, "y"}};
  op.tasks = {{"recv_x_fc", "data", 0, "fmacs y += w_col * x"}};
  MeshPartition p;
  p.rect = {3, 1, 2, 2};
  p.ops = {op};
  p.colors = {0, 1};
  MeshPlan plan;
  plan.device = "wse3";
  plan.partitions = {p};

  const MeshOp& o = plan.partitions[0].ops[0];
  EXPECT_STREQ(mesh_op_kind_name(o.kind), "gemm");
  EXPECT_EQ(o.split.pes(), plan.partitions[0].rect.pes());
  int64_t bytes = 0;
  for (const PeBuffer& b : o.buffers) bytes += b.bytes;
  EXPECT_EQ(bytes, 48 + 12 + 16);
  // Per-PE pieces: ceil(6/2) x ceil(8/2) weights, ceil(6/2) inputs, ceil(8/2) outputs.
  EXPECT_EQ(o.tensors[0].bytes_per_pe, 3 * 4 * 4);
  MeshRect a{0, 0, 4, 4}, b{4, 0, 2, 2}, c{3, 3, 2, 2}, d{3, 3, 2, 2, 1};
  EXPECT_FALSE(a.overlaps(b));
  EXPECT_TRUE(a.overlaps(c));
  EXPECT_FALSE(c.overlaps(d));  // another system
}

}  // namespace
}  // namespace pyflame_rt
