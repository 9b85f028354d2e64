#include "compiler/memory_plan.h"

#include <algorithm>
#include <vector>

#include "compiler/pass.h"

namespace pyflame_rt {

namespace {

constexpr int64_t kAlignment = 64;

// Bytes of a value with a fully known shape and a fixed-size dtype, or -1.
int64_t static_bytes(const ValueInfo* v) {
  if (!v || !v->shape.fully_known() || v->dtype == DType::kUndefined || v->dtype == DType::kString) return -1;
  int64_t n = 1;
  for (const Dim& d : v->shape.dims) n *= d.value;
  int64_t bytes = n * static_cast<int64_t>(dtype_size(v->dtype));
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

struct Interval {
  std::string name;
  int64_t bytes;
  size_t first, last;  // steps during which the value must exist
};

}  // namespace

MemoryPlan plan_memory(const Graph& graph) {
  MemoryPlan plan;
  for (const auto& kv : graph.initializers) plan.weight_bytes += static_cast<int64_t>(kv.second.nbytes());
  std::map<std::string, size_t> last_use;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& in : graph.nodes[i].inputs) last_use[in] = i;
    for (const auto& r : subgraph_outer_reads(graph.nodes[i])) last_use[r] = i;
  }
  std::vector<Interval> values;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& out : graph.nodes[i].outputs) {
      if (out.empty()) continue;
      int64_t bytes = static_bytes(graph.find_value_info(out));
      if (bytes < 0) { ++plan.unknown_values; continue; }
      // Graph outputs live to the end of the run.
      size_t last = graph.find_output(out) ? graph.nodes.size() : (last_use.count(out) ? last_use[out] : i);
      values.push_back({out, bytes, i, last});
    }
  }
  // Largest first, each at the lowest offset free for its whole lifetime (first fit).
  std::sort(values.begin(), values.end(), [](const Interval& a, const Interval& b) { return a.bytes > b.bytes; });
  std::vector<std::pair<const Interval*, int64_t>> placed;
  for (const Interval& v : values) {
    plan.no_reuse_bytes += v.bytes;
    std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of live overlapping values
    for (const auto& p : placed) {
      if (p.first->first <= v.last && v.first <= p.first->last) busy.emplace_back(p.second, p.second + p.first->bytes);
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& b : busy) {
      if (offset + v.bytes <= b.first) break;
      offset = std::max(offset, b.second);
    }
    placed.emplace_back(&v, offset);
    plan.offsets[v.name] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + v.bytes);
  }
  return plan;
}

}  // namespace pyflame_rt
