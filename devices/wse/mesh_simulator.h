// The mesh simulator: executes a placed program (MeshPlan) on the host, PE by PE where
// arithmetic crosses PEs. A GEMM/conv op is computed as its PEs compute it: each PE's weight
// tile times its x tile on Eigen (the PE's @fmacs), the partial sums added along each PE row in
// the chain order of the EAST reduction, the epilogue (bias, residual, activation) on the last
// column. Ops whose arithmetic never crosses PEs (elementwise, movement) and the ops marked
// "whole_tensor" in the plan run once over the whole tensor on the reference kernels. Cycles
// come from the cost model per PE (max over the op's PEs) and the plan's transfers.
//
// GEMM/conv cycles: every PE's compute from its own tile size, the broadcast and the EAST
// reduction of its representative rows simulated wavelet by wavelet (fabric_sim.h).
//
//   MeshSimulator sim(graph, plan, spec);
//   ASSIGN_OR_RETURN(std::vector<Value> outs, sim.run(inputs, &stats));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "devices/wse/mesh_plan.h"
#include "devices/wse/wse_spec.h"
#include "graph/graph.h"
#include "graph/value.h"

namespace pyflame_rt {

// What one run did on the simulated fabric.
struct MeshRunStats {
  double cycles = 0;                 // simulated: per op max over PEs, plus the transfers
  int64_t pe_tiles = 0;              // PE tiles computed one by one
  std::map<int, int64_t> wavelets;   // per colour: wavelets moved (broadcasts, reductions, transfers)
  std::vector<std::string> whole_tensor_ops;  // nodes computed once over the whole tensor
  // Per GEMM/conv node: cycles of its slowest PE row, its x broadcast and row reduction
  // simulated wavelet by wavelet (fabric_sim.h) on the first and last rows of PEs (the others
  // repeat them with no more data); other ops contribute the cost model's estimate.
  std::map<std::string, double> op_cycles;
  int64_t rows_simulated = 0;
};

class MeshSimulator {
 public:
  // `plan` may be empty (no partitions): every op then runs on one PE's split (1, 1, 1), which
  // is how shapes are discovered before a plan exists.
  MeshSimulator(const Graph& graph, MeshPlan plan, WseSpec spec);
  ~MeshSimulator();
  // Inputs in graph input order, outputs in graph output order. Thread-safe.
  Expected<std::vector<Value>> run(std::vector<Value> inputs, MeshRunStats* stats,
                                   std::map<std::string, Dims>* shapes_seen = nullptr) const;
  const MeshPlan& plan() const { return plan_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  MeshPlan plan_;
};

}  // namespace pyflame_rt
