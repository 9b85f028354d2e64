// Placement: rectangles without overlap inside the fabric, every PE within its SRAM budget,
// the strategy by size, and a model too big for the fabric is an error with the numbers.
#include <gtest/gtest.h>

#include "devices/wse/placement.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

// An MLP of `layers` FusedMatMul+Relu layers of width `width` (weights 4 width^2 bytes each).
Graph mlp(int layers, int64_t width) {
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports["pyflame_rt"] = 1;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, width})});
  std::string prev = "x";
  for (int i = 0; i < layers; ++i) {
    std::string w = "w" + std::to_string(i), b = "b" + std::to_string(i), y = "y" + std::to_string(i);
    g.initializers[w] = random_tensor({width, width}, static_cast<uint32_t>(i));
    g.initializers[b] = random_tensor({width}, static_cast<uint32_t>(100 + i));
    Node& n = g.add_node("FusedMatMul", {prev, w, b}, {y}, "fc" + std::to_string(i));
    n.domain = "pyflame_rt";
    n.attributes["activation"] = Attribute::make_string("Relu");
    g.value_info[y] = {y, DType::kFloat32, Shape::from_dims({1, width})};
    prev = y;
  }
  g.outputs.push_back({prev, DType::kFloat32, Shape::from_dims({1, width})});
  return g;
}

WseSpec fabric(int w, int h, int systems = 1) {
  auto s = wse_spec_with_options(wse_spec(WseGeneration::kWse3),
                                 {{"fabric", std::to_string(w) + "x" + std::to_string(h)}, {"systems", std::to_string(systems)}});
  EXPECT_TRUE(s.ok());
  return *s;
}

void expect_valid(const MeshPlan& plan, const WseSpec& spec) {
  ASSERT_FALSE(plan.partitions.empty());
  for (size_t i = 0; i < plan.partitions.size(); ++i) {
    const MeshRect& a = plan.partitions[i].rect;
    EXPECT_GE(a.x, 0);
    EXPECT_GE(a.y, 0);
    EXPECT_LE(a.x + a.w * (plan.replicas > 1 ? plan.replicas : 1), spec.usable_width);
    EXPECT_LE(a.y + a.h, spec.usable_height);
    EXPECT_LT(a.system, spec.systems);
    EXPECT_LE(plan.partitions[i].sram_bytes_max, spec.sram_bytes_per_pe) << "partition " << i;
    EXPECT_LE(plan.partitions[i].sram_bytes_mean, plan.partitions[i].sram_bytes_max);
    for (const MeshOp& op : plan.partitions[i].ops) {
      EXPECT_LE(op.split.width(), a.w) << op.node;
      EXPECT_LE(op.split.height(), a.h) << op.node;
      int64_t bytes = 0;
      for (const PeBuffer& b : op.buffers) bytes += b.bytes;
      EXPECT_EQ(bytes, op.sram_bytes_max) << op.node;
    }
    for (int c : plan.partitions[i].colors) {
      EXPECT_GE(c, 0);
      EXPECT_LT(c, spec.program_colors());
    }
    for (size_t j = i + 1; j < plan.partitions.size(); ++j) {
      EXPECT_FALSE(a.overlaps(plan.partitions[j].rect)) << "partitions " << i << " and " << j;
    }
  }
  EXPECT_GT(plan.est_cycles, 0);
  EXPECT_GT(plan.est_throughput_per_s, 0);
  EXPECT_GT(plan.est_latency_us, plan.host_io_us);
  EXPECT_LE(plan.utilisation, 1.0);
}

TEST(WsePlacement, SmallModelIsReplicatedForBatchParallelism) {
  WseSpec spec = fabric(200, 100);
  auto plan = plan_mesh(mlp(3, 64), spec);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  expect_valid(*plan, spec);
  EXPECT_EQ(plan->strategy, "replicated");
  EXPECT_GT(plan->replicas, 1);
}

TEST(WsePlacement, LargeModelIsPipelinedAtItsSmallestRectangles) {
  // 6 layers of 4 MB: 6 x ~103 PEs of 40 KB on a 36 x 24 fabric (864 PEs).
  WseSpec spec = fabric(36, 24);
  auto plan = plan_mesh(mlp(6, 1024), spec);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  expect_valid(*plan, spec);
  EXPECT_EQ(plan->strategy, "pipelined");
  EXPECT_EQ(plan->partitions.size(), 6u);
  EXPECT_EQ(plan->replicas, 1);
}

TEST(WsePlacement, BeyondOneWaferSpillsOntoFurtherSystems) {
  WseSpec one = fabric(24, 20);
  auto err = plan_mesh(mlp(6, 1024), one);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), StatusCode::kResourceExhausted);
  const std::string& msg = err.status().message();
  EXPECT_NE(msg.find("480"), std::string::npos) << msg;    // the fabric's PEs
  EXPECT_NE(msg.find("25.19 MB"), std::string::npos) << msg;  // the weights (6 x 1024 x 1025 x 4 bytes)
  EXPECT_NE(msg.find("40960 bytes per PE"), std::string::npos) << msg;
  EXPECT_NE(msg.find("systems"), std::string::npos) << msg;
  WseSpec two = fabric(24, 20, 2);
  auto plan = plan_mesh(mlp(6, 1024), two);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  expect_valid(*plan, two);
  EXPECT_EQ(plan->strategy, "multi_system");
  EXPECT_EQ(plan->systems, 2);
}

TEST(WsePlacement, OneLayerTooBigForTheFabricNamesTheNodeAndTheNumbers) {
  auto err = plan_mesh(mlp(1, 2048), fabric(10, 10));
  ASSERT_FALSE(err.ok());
  const std::string& msg = err.status().message();
  EXPECT_NE(msg.find("fc0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10 x 10"), std::string::npos) << msg;
  EXPECT_NE(msg.find("16.79 MB"), std::string::npos) << msg;
}

TEST(WsePlacement, TransfersGetDistinctColoursWhereTheirRoutesMeet) {
  WseSpec spec = fabric(36, 24);
  auto plan = plan_mesh(mlp(6, 1024), spec);
  ASSERT_TRUE(plan.ok());
  int fabric_transfers = 0;
  for (const MeshTransfer& t : plan->transfers) {
    if (t.from >= 0 && t.to >= 0) {
      ++fabric_transfers;
      EXPECT_GE(t.color, 3);  // 0..2 are the partitions' own collectives
      EXPECT_LT(t.color, spec.program_colors());
    }
  }
  EXPECT_EQ(fabric_transfers, 5);
}

}  // namespace
}  // namespace pyflame_rt
