// Wavelet-level simulation of one line of PEs (a row or a column: the representative slice of
// an op; every other line of the same op does the same with no more data). Each wavelet's
// arrival at each PE is computed cycle by cycle under the fabric's rules: one 32-bit wavelet per
// cycle per link direction, `hop_cycles` from router to router, a reducing PE adds an arriving
// wavelet to its own element (router in, @fadds, router out: 2 T_R + 1 cycles) and cannot
// start before its own partial is ready. The closed forms of cost_model.h are the limits of
// these simulations when every PE is ready at time 0 (the tests hold them to each other).
//
//   double t = simulate_chain_reduce(spec, words, ready_cycles_per_pe);
#pragma once

#include <cstdint>
#include <vector>

#include "devices/wse/wse_spec.h"

namespace pyflame_rt {

// PE 0 sends `words` wavelets EAST, each PE i > 0 adds its element and forwards; PE i's partial
// is ready at ready[i]. Returns the cycle after the last PE holds the last sum.
double simulate_chain_reduce(const WseSpec& spec, int64_t words, const std::vector<double>& ready);

// PE 0 sends `words` wavelets down a line of `pes` PEs, every PE keeping a copy (RAMP) and
// forwarding. Returns the cycle after the last PE received the last wavelet.
double simulate_broadcast(const WseSpec& spec, int64_t words, int64_t pes);

}  // namespace pyflame_rt
