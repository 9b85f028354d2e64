#include "compiler/memory_plan.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "compiler/pass.h"

namespace pyflame_rt {

namespace {

constexpr int64_t kAlignment = 64;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

int64_t add_saturating(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? kMax : r;
}

// Bytes of a value with a fully known shape and a fixed-size dtype, or -1. A size past int64
// (dims from a model: UBSan, kernel_run) saturates.
int64_t static_bytes(const ValueInfo* v) {
  if (!v || !v->shape.fully_known() || v->dtype == DType::kUndefined || v->dtype == DType::kString) return -1;
  Dims dims;
  for (const Dim& d : v->shape.dims) dims.push_back(d.value);
  const int64_t n = num_elements(dims);  // saturating; 0 when any dim is 0
  int64_t bytes;
  if (__builtin_mul_overflow(n, static_cast<int64_t>(dtype_size(v->dtype)), &bytes) || bytes > kMax - kAlignment) {
    return kMax;
  }
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
  for (const auto& kv : graph.initializers) {
    plan.weight_bytes = add_saturating(plan.weight_bytes, static_cast<int64_t>(kv.second.nbytes()));
  }
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
    plan.no_reuse_bytes = add_saturating(plan.no_reuse_bytes, v.bytes);
    std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, end) of live overlapping values
    for (const auto& p : placed) {
      if (p.first->first <= v.last && v.first <= p.first->last) {
        busy.emplace_back(p.second, add_saturating(p.second, p.first->bytes));
      }
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& b : busy) {
      if (add_saturating(offset, v.bytes) <= b.first) break;
      offset = std::max(offset, b.second);
    }
    placed.emplace_back(&v, offset);
    plan.offsets[v.name] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, add_saturating(offset, v.bytes));
  }
  return plan;
}

int64_t MemoryPlan::needed_bytes() const { return add_saturating(weight_bytes, arena_bytes); }

}  // namespace pyflame_rt
