// The cycle formulas of cost_model.h.
#include "devices/wse/cost_model.h"

#include <algorithm>
#include <cmath>

namespace pyflame_rt {

namespace {
double ceil_div(double a, double b) { return std::ceil(a / b); }
}  // namespace

double fmacs_cycles(const WseSpec& spec, double tasks, double extent) {
  if (tasks <= 0 || extent <= 0) return 0;
  return tasks * (extent / spec.fmacs_per_cycle_fp32 + spec.task_overhead_cycles);
}

double vector_cycles(const WseSpec& spec, double elements, double tasks, double transcendental) {
  if (elements <= 0) return 0;
  return elements / spec.vector_ops_per_cycle + transcendental * spec.transcendental_cycles +
         std::max(1.0, tasks) * spec.task_overhead_cycles;
}

double broadcast_cycles(const WseSpec& spec, double words, int64_t pes) {
  if (words <= 0 || pes <= 1) return 0;
  return words + spec.hop_cycles * static_cast<double>(pes - 1);
}

double chain_reduce_cycles(const WseSpec& spec, double words, int64_t hops) {
  if (words <= 0 || hops <= 0) return 0;
  return words + (2 * spec.router_delay_cycles + 1) * static_cast<double>(hops);
}

double transfer_cycles(const WseSpec& spec, double words, int64_t lanes, int64_t hops) {
  if (words <= 0) return 0;
  return ceil_div(words, static_cast<double>(std::max<int64_t>(1, lanes))) + spec.hop_cycles * static_cast<double>(hops);
}

OpCycles gemm_op_cycles(const WseSpec& spec, const GemmView& g, const MeshSplit& s) {
  OpCycles c;
  double m = ceil_div(static_cast<double>(g.m), s.m_parts);
  double k = ceil_div(static_cast<double>(g.k), s.k_parts);
  double n = ceil_div(static_cast<double>(g.n), s.n_parts);
  c.compute = fmacs_cycles(spec, m * k, n);
  c.broadcast = broadcast_cycles(spec, m * k, s.n_parts);
  c.reduce = chain_reduce_cycles(spec, m * n, s.k_parts - 1);
  // Data tasks run as x wavelets arrive: the broadcast overlaps the compute; the reduction
  // starts when a row's partials are complete.
  c.total = std::max(c.compute, c.broadcast) + c.reduce;
  return c;
}

}  // namespace pyflame_rt
