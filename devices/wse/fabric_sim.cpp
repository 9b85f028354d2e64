// The line simulations of fabric_sim.h: per wavelet j and PE i, the cycle it leaves the PE's
// router, from the rules (link bandwidth, hop latency, the add's router and ALU delays).
#include "devices/wse/fabric_sim.h"

#include <algorithm>

namespace pyflame_rt {

double simulate_chain_reduce(const WseSpec& spec, int64_t words, const std::vector<double>& ready) {
  const size_t pes = ready.size();
  if (words <= 0 || pes <= 1) return pes ? ready[0] : 0;
  const double add_delay = 2 * spec.router_delay_cycles + 1;  // router in, @fadds, router out
  std::vector<double> prev(static_cast<size_t>(words)), cur(static_cast<size_t>(words));
  // PE 0 streams its partial as soon as it is ready, one wavelet per cycle.
  for (int64_t j = 0; j < words; ++j) prev[static_cast<size_t>(j)] = ready[0] + static_cast<double>(j);
  for (size_t i = 1; i < pes; ++i) {
    double last = -1;
    for (int64_t j = 0; j < words; ++j) {
      const size_t u = static_cast<size_t>(j);
      // The wavelet arrived (prev[u]); the PE's own element is ready; the outgoing link took the
      // previous sum last cycle.
      double t = std::max({prev[u] + add_delay, ready[i] + static_cast<double>(j) + 1, last + 1});
      cur[u] = t;
      last = t;
    }
    std::swap(prev, cur);
  }
  return prev.back() + 1;  // the cycle after the last sum is written
}

double simulate_broadcast(const WseSpec& spec, int64_t words, int64_t pes) {
  if (words <= 0 || pes <= 1) return 0;
  std::vector<double> t(static_cast<size_t>(words));
  for (int64_t j = 0; j < words; ++j) t[static_cast<size_t>(j)] = static_cast<double>(j);  // PE 0 sends
  for (int64_t i = 1; i < pes; ++i) {
    double last = -1;
    for (int64_t j = 0; j < words; ++j) {
      const size_t u = static_cast<size_t>(j);
      t[u] = std::max(t[u] + spec.hop_cycles, last + 1);  // one wavelet per cycle on each link
      last = t[u];
    }
  }
  return t.back() + 1;
}

}  // namespace pyflame_rt
