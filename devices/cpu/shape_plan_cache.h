// ShapePlanCache: the per-shape plans of one native op ("reshape once, run many"). An op is
// created once per node; the first run with an input shape builds what that shape needs
// (oneDNN primitives, packed weights, index tables) and later runs with it reuse the plan.
//
//   ShapePlanCache<Plan> plans_;  // Key = Dims by default
//   ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan,
//                    plans_.get_or_build(xd, [&] { return build_plan(xd); }));
//
// - Thread-safe: runs of one op on several threads share its cache. The builder runs under
//   the cache's lock, so concurrent first runs with one shape build (and pack weights) once,
//   not once per thread; the cost is that a run of the same op with another new shape waits
//   for a build in progress. Builds happen once per shape and the lock is per op, so runs of
//   other nodes never wait. A builder must not call back into its own cache.
// - A builder returns Expected<std::shared_ptr<Plan>> or std::shared_ptr<Plan>. A failed build
//   (an error Status, or a thrown exception) is not cached: the next run tries again. A null
//   plan is a successful answer ("no native kernel for this shape, use the reference") and is
//   cached like any other, so that decision is not retried on every run.
// - Bounded: at most `capacity` shapes (least recently used evicted first), so a stream of
//   ever-changing shapes cannot grow memory without limit. An evicted plan stays alive while
//   a run still holds its shared_ptr.
// - Keys need only operator== (oneDNN memory descs have no ordering); with at most a few
//   dozen entries, most often one, a linear scan is cheaper than a tree or a hash.
// - A plan is also kept per run team (RunTeam: the threads of the run in progress on this
//   thread, set by CpuProgram): oneDNN sizes a primitive for the team of the thread that
//   creates it and forks that many threads whenever it runs, whatever the caller's team then.
//   A run at its configured team uses the plans it always did (a step's smaller team for a
//   small problem, step_threads.h, follows from its shapes, which the key holds); on contended
//   cores (core_contention.h) the key is each step's own team, so a step that keeps the team
//   shares those plans and the others get primitives made for one thread.
//   for_each visits each key once (its largest team's plan).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "graph/shape.h"
#include "graph/status.h"

namespace pyflame_rt {
namespace cpu {

struct PlanCacheCounters {
  uint64_t hits = 0;       // get_or_build answered from the cache
  uint64_t misses = 0;     // get_or_build ran the builder (failed builds included)
  uint64_t evictions = 0;  // plans dropped to stay within capacity
  size_t size = 0;         // plans held now
};

// The team of the run in progress on the calling thread (0 outside one; on contended cores
// the step's), for plan keys.
class RunTeam {
 public:
  explicit RunTeam(int team) : saved_(current()) { current() = team; }
  ~RunTeam() { current() = saved_; }
  RunTeam(const RunTeam&) = delete;
  RunTeam& operator=(const RunTeam&) = delete;
  static int& current() {
    thread_local int team = 0;
    return team;
  }

 private:
  int saved_;
};

template <typename Plan, typename Key = Dims>
class ShapePlanCache {
 public:
  using PlanPtr = std::shared_ptr<const Plan>;
  // 32 shapes per op: more than the batch sizes and sequence lengths a server sees in steady
  // state, few enough that a plan (packed weights are the largest part) cannot pile up.
  static constexpr size_t kDefaultCapacity = 32;

  explicit ShapePlanCache(size_t capacity = kDefaultCapacity) : capacity_(capacity > 0 ? capacity : 1) {}
  ShapePlanCache(const ShapePlanCache&) = delete;
  ShapePlanCache& operator=(const ShapePlanCache&) = delete;

  // The plan for `key`, built by `build()` on a miss (see the header comment).
  template <typename Builder>
  Expected<PlanPtr> get_or_build(const Key& key, Builder&& build) {
    const int team = RunTeam::current();
    std::lock_guard<std::mutex> lock(mu_);
    for (Entry& e : entries_) {
      if (e.team == team && e.key == key) {
        e.last_used = ++clock_;
        ++counters_.hits;
        return e.plan;
      }
    }
    ++counters_.misses;
    Expected<PlanPtr> built = lift(build());
    if (!built.ok()) return built;
    if (entries_.size() >= capacity_) evict_least_recent();
    entries_.push_back({key, team, *built, ++clock_});
    return built;
  }

  // Calls fn(key, plan) for every cached key (once: the plan of its largest team),
  // on a snapshot taken under the lock: fn runs without it (it may take time, or run the op),
  // and the plans it sees stay alive meanwhile.
  void for_each(const std::function<void(const Key&, const PlanPtr&)>& fn) const {
    std::vector<std::pair<Key, PlanPtr>> snapshot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      snapshot.reserve(entries_.size());
      for (const Entry& e : entries_) {
        // One per key: the largest team's plan (what a run with no contention uses, and what
        // a compiled plan's import prepares again), the most recent among equals.
        auto same_key = [&](const Entry& o) {
          return o.key == e.key && (o.team > e.team || (o.team == e.team && o.last_used > e.last_used));
        };
        if (std::none_of(entries_.begin(), entries_.end(), same_key)) snapshot.emplace_back(e.key, e.plan);
      }
    }
    for (const auto& kv : snapshot) fn(kv.first, kv.second);
  }

  PlanCacheCounters counters() const {
    std::lock_guard<std::mutex> lock(mu_);
    PlanCacheCounters c = counters_;
    c.size = entries_.size();
    return c;
  }
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    Key key;
    int team;  // RunTeam::current() when the plan was built
    PlanPtr plan;
    uint64_t last_used;
  };

  template <typename P>
  static Expected<PlanPtr> lift(Expected<std::shared_ptr<P>> e) {
    if (!e.ok()) return e.status();
    return PlanPtr(std::move(e).value());
  }
  template <typename P>
  static Expected<PlanPtr> lift(std::shared_ptr<P> p) {
    return PlanPtr(std::move(p));
  }

  void evict_least_recent() {
    size_t oldest = 0;
    for (size_t i = 1; i < entries_.size(); ++i) {
      if (entries_[i].last_used < entries_[oldest].last_used) oldest = i;
    }
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(oldest));
    ++counters_.evictions;
  }

  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  uint64_t clock_ = 0;  // a use counter: the entry with the smallest last_used is the LRU one
  PlanCacheCounters counters_;
};

}  // namespace cpu
}  // namespace pyflame_rt
