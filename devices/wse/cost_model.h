// The wafer's cycle model (wse.md "Cost model"), one function per mechanism, every constant
// taken from WseSpec (wse_spec.h, where each is sourced). Placement uses it to choose tilings;
// the simulator uses it to count the cycles of the program it executes.
//
//   double c = fmacs_cycles(spec, /*tasks=*/k_per_pe, /*extent=*/n_per_pe);   // @fmacs per wavelet
//   double b = broadcast_cycles(spec, words, pes_in_column);
//   double r = chain_reduce_cycles(spec, words, hops);
#pragma once

#include <cstdint>

#include "devices/wse/mesh_plan.h"
#include "devices/wse/wse_spec.h"

namespace pyflame_rt {

// `tasks` DSD operations of `extent` fp32 FMACs each on one PE (e.g. one @fmacs of a column of
// W per arriving x wavelet): extent / sustained rate + the per-task overhead, per task.
double fmacs_cycles(const WseSpec& spec, double tasks, double extent);
// `elements` vector results (@fadds/@fmuls/@fmovs) in `tasks` operations, `transcendental`
// of them needing the software exp/tanh/erf routine.
double vector_cycles(const WseSpec& spec, double elements, double tasks, double transcendental = 0);
// Pipelined broadcast of `words` wavelets across `pes` PEs of a row/column: L + hop x (Q - 1).
double broadcast_cycles(const WseSpec& spec, double words, int64_t pes);
// Chain reduction of a `words`-element vector over `hops` hops (Luczynski et al. 2024):
// T = E + (2 T_R + 1) D; the compute term max(C, ...) is the caller's compute phase.
double chain_reduce_cycles(const WseSpec& spec, double words, int64_t hops);
// Moving `words` across a boundary `lanes` PEs wide over `hops` hops (one wavelet/cycle/link).
double transfer_cycles(const WseSpec& spec, double words, int64_t lanes, int64_t hops);

// Cycles of a GEMM-view op (kGemm, kConv) tiled by `split`: each PE runs one @fmacs of extent
// ceil(N/n) per arriving x element (ceil(M/m) x ceil(K/k) of them), x broadcast down the n rows
// overlaps the compute, the partials are chain-reduced along the k columns.
OpCycles gemm_op_cycles(const WseSpec& spec, const GemmView& g, const MeshSplit& split);

}  // namespace pyflame_rt
