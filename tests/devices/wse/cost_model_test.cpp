// The cycle model against its published calibration points (wse.md "Calibration points").
#include <gtest/gtest.h>

#include "devices/wse/cost_model.h"
#include "devices/wse/fabric_sim.h"
#include "devices/wse/placement.h"

namespace pyflame_rt {
namespace {

const WseSpec& w3() { return wse_spec(WseGeneration::kWse3); }

// Ltaief et al. SC23: a memory-bound matvec sustains about 0.75 fp32 FMAC/cycle/PE. A GEMV whose
// per-PE block is large (64 x-elements, each an @fmacs over a 150-row column: 38 KB of
// weights) must land within 20% of it.
TEST(WseCostModel, LargePerPeGemvLandsNearThePublishedRate) {
  GemmView g{1, 64 * 8, 150 * 8, 1};
  MeshSplit s;
  s.k_parts = 8;
  s.n_parts = 8;
  OpCycles c = gemm_op_cycles(w3(), g, s);
  double fmacs_per_pe = 64.0 * 150.0;
  double rate = fmacs_per_pe / c.compute;
  EXPECT_NEAR(rate, 0.75, 0.75 * 0.2) << "compute cycles " << c.compute;
  EXPECT_LT(rate, 1.0);  // never the peak
  // The whole op (broadcast overlapped, reduction after) stays within 20% too.
  EXPECT_NEAR(fmacs_per_pe / c.total, 0.75, 0.75 * 0.2) << "total cycles " << c.total;
}

// Per-hop latency: the simprint tutorial shows neighbours 2 cycles apart, so a wavelet
// broadcast over Q PEs reaches the last one 2 (Q - 1) cycles after the first.
TEST(WseCostModel, BroadcastIsWordsPlusTwoCyclesPerHop) {
  EXPECT_DOUBLE_EQ(broadcast_cycles(w3(), 1, 2), 1 + 2);
  EXPECT_DOUBLE_EQ(broadcast_cycles(w3(), 100, 11), 100 + 2 * 10);
  EXPECT_DOUBLE_EQ(broadcast_cycles(w3(), 100, 1), 0);  // nobody to send to
}

// Luczynski et al. 2024: T = max(C, E/N + L) + (2 T_R + 1) D with T_R = 1: linear in the
// hops with slope 3 and in the vector length with slope 1.
TEST(WseCostModel, ChainReductionFollowsLuczynskisShape) {
  double t1 = chain_reduce_cycles(w3(), 256, 10), t2 = chain_reduce_cycles(w3(), 256, 20);
  EXPECT_DOUBLE_EQ(t2 - t1, 3 * 10);
  EXPECT_DOUBLE_EQ(chain_reduce_cycles(w3(), 512, 10) - t1, 256);
  EXPECT_DOUBLE_EQ(chain_reduce_cycles(w3(), 256, 0), 0);
}

// The wavelet-level line simulations agree with the closed forms when every PE is ready at
// once, and show the compute term max(C, ...) of Luczynski's model when one PE is late.
TEST(WseFabricSim, LineSimulationsMatchTheClosedForms) {
  for (int64_t words : {1, 7, 300}) {
    for (int64_t pes : {2, 5, 40}) {
      EXPECT_DOUBLE_EQ(simulate_broadcast(w3(), words, pes), broadcast_cycles(w3(), static_cast<double>(words), pes))
          << words << " words over " << pes;
      EXPECT_DOUBLE_EQ(simulate_chain_reduce(w3(), words, std::vector<double>(static_cast<size_t>(pes), 0)),
                       chain_reduce_cycles(w3(), static_cast<double>(words), pes - 1))
          << words << " words over " << pes;
    }
  }
  // The neighbour of the sender sees a wavelet 2 cycles after the sender's router (simprint).
  EXPECT_DOUBLE_EQ(simulate_broadcast(w3(), 1, 2) - simulate_broadcast(w3(), 1, 1), 1 + 2);
  // A PE whose partial is ready late holds the chain: the reduction ends (E + remaining hops)
  // after it, not before.
  std::vector<double> ready(10, 0);
  ready[6] = 5000;
  double t = simulate_chain_reduce(w3(), 100, ready);
  EXPECT_GE(t, 5000 + 100);
  EXPECT_LE(t, 5000 + 100 + 3 * 4 + 3);
}

TEST(WseCostModel, HostIoIsBandwidthPlusTransactionOverhead) {
  // 16 channels x 7 Gb/s = 14 GB/s: 602,112 bytes (a 224x224x3 fp32 image) take 43 us + 200 us.
  EXPECT_NEAR(w3().host_io_us(602112), 602112 * 8 / (16 * 7e9) * 1e6 + 200, 1e-9);
}

// The tiling choice is the cost model's: more PEs never make a GEMM slower, and a GEMV given a
// large rectangle spreads its reduction over columns (the csl-examples layout).
TEST(WseCostModel, TilingUsesTheRectangleAndFitsTheBudget) {
  MeshOp op;
  op.node = "fc";
  op.op_type = "MatMul";
  op.kind = MeshOpKind::kGemm;
  op.gemm = {1, 4096, 1000, 1};
  op.tensors = {{"x", "input", {1, 4096}}, {"w", "weight", {4096, 1000}}, {"y", "output", {1, 1000}}};
  op.weight_bytes = 4096 * 1000 * 4;
  ASSERT_FALSE(tile_op(w3(), op, 4, 4, w3().data_bytes_per_pe()));  // 16 MB on 16 PEs: no
  ASSERT_TRUE(tile_op(w3(), op, 40, 40, w3().data_bytes_per_pe()));
  EXPECT_LE(op.sram_bytes_max, w3().data_bytes_per_pe());
  EXPECT_GT(op.split.k_parts, 1);
  EXPECT_GT(op.split.n_parts, 1);
  EXPECT_LE(op.split.width(), 40);
  EXPECT_LE(op.split.height(), 40);
  double small = op.cycles.total;
  ASSERT_TRUE(tile_op(w3(), op, 100, 100, w3().data_bytes_per_pe()));
  EXPECT_LE(op.cycles.total, small);
}

}  // namespace
}  // namespace pyflame_rt
