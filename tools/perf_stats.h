// Latency statistics of a perf run: nearest-rank percentiles (p50 is a latency some run really
// had, as onnxruntime_perf_test and trtexec report), mean, standard deviation, throughput.
#pragma once

#include <cstddef>
#include <vector>

namespace pyflame_rt {

struct LatencyStats {
  size_t runs = 0;
  double total_s = 0;  // wall time of the measured runs
  double mean_ms = 0, std_ms = 0, min_ms = 0, max_ms = 0;
  double p50_ms = 0, p90_ms = 0, p95_ms = 0, p99_ms = 0;
  double runs_per_s = 0;
};

// The q-quantile (0 < q <= 1) of sorted values by nearest rank: sorted[ceil(q * n) - 1].
double nearest_rank(const std::vector<double>& sorted, double q);

LatencyStats summarize_latencies(std::vector<double> latencies_ms, double total_s);

}  // namespace pyflame_rt
