#include "perf_stats.h"

#include <algorithm>
#include <cmath>

namespace pyflame_rt {

double nearest_rank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

LatencyStats summarize_latencies(std::vector<double> ms, double total_s) {
  LatencyStats s;
  s.runs = ms.size();
  s.total_s = total_s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean_ms = sum / static_cast<double>(ms.size());
  double sq = 0;
  for (double v : ms) sq += (v - s.mean_ms) * (v - s.mean_ms);
  s.std_ms = std::sqrt(sq / static_cast<double>(ms.size()));
  s.min_ms = ms.front();
  s.max_ms = ms.back();
  s.p50_ms = nearest_rank(ms, 0.50);
  s.p90_ms = nearest_rank(ms, 0.90);
  s.p95_ms = nearest_rank(ms, 0.95);
  s.p99_ms = nearest_rank(ms, 0.99);
  s.runs_per_s = total_s > 0 ? static_cast<double>(ms.size()) / total_s : 0;
  return s;
}

}  // namespace pyflame_rt
