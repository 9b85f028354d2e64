#include "actors/pipeline_stage.h"

#include <algorithm>
#include <chrono>

namespace pyflame_rt {
namespace {

// One envelope out of the heads of every input (same stream and seq by construction): a
// drop or an error anywhere wins; otherwise the frames merge, the first upstream winning.
Envelope join(std::vector<Envelope>& heads) {
  Envelope out = std::move(heads[0]);
  for (size_t i = 1; i < heads.size(); ++i) {
    Envelope& h = heads[i];
    if (out.dropped() || !out.status.ok()) continue;
    if (h.dropped()) {
      out.frame.clear();
      out.dropped_at = h.dropped_at;
    } else if (!h.status.ok()) {
      out.frame.clear();
      out.status = h.status;
    } else {
      for (auto& [name, t] : h.frame) out.frame.emplace(name, std::move(t));
    }
  }
  return out;
}

}  // namespace

void StageRuntime::record_latency(double us) {
  std::lock_guard<std::mutex> lock(latency_mu);
  latencies_us.push_back(us);
  if (latencies_us.size() > 1024) latencies_us.pop_front();
}

StageMetrics StageRuntime::metrics() const {
  StageMetrics m;
  m.name = spec.name;
  m.policy = drop_policy_name(spec.policy);
  m.processed = processed;
  m.failed = failed;
  for (const auto& in : inputs) {
    m.dropped += in->dropped();
    m.queue_depth = std::max(m.queue_depth, in->depth());
    m.max_queue_depth = std::max(m.max_queue_depth, in->max_depth());
  }
  std::vector<double> sorted;
  {
    std::lock_guard<std::mutex> lock(latency_mu);
    sorted.assign(latencies_us.begin(), latencies_us.end());
  }
  if (!sorted.empty()) {
    std::sort(sorted.begin(), sorted.end());
    m.p50_us = sorted[sorted.size() / 2];
    m.p99_us = sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
  }
  return m;
}

void run_stage_loop(StageRuntime& stage) {
  std::vector<Envelope> heads(stage.inputs.size());
  while (true) {
    for (size_t i = 0; i < stage.inputs.size(); ++i) {
      if (!stage.inputs[i]->pop(&heads[i])) {
        for (auto& out : stage.outputs) out->close();
        return;
      }
    }
    Envelope out = join(heads);
    if (!out.dropped() && out.status.ok()) {
      auto start = std::chrono::steady_clock::now();
      Expected<Frame> result = Status();
      if (!stage.spec.fn) {
        result = std::move(out.frame);
      } else {
        try {
          result = stage.spec.fn(out.frame);
        } catch (const std::exception& e) {
          result = runtime_error("threw: ", e.what());
        } catch (...) {
          result = runtime_error("threw an unknown exception");
        }
      }
      stage.record_latency(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      ++stage.processed;
      if (result.ok()) {
        out.frame = std::move(result).value();
      } else {
        ++stage.failed;
        out.frame.clear();
        out.status = result.status().with_context("stage '" + stage.spec.name + "': ");
      }
    }
    for (size_t i = 0; i < stage.outputs.size(); ++i) {
      bool last = i + 1 == stage.outputs.size();
      if (stage.outputs[i]->push(last ? std::move(out) : out) == BoundedChannel::Push::kClosed) return;  // aborted
    }
  }
}

}  // namespace pyflame_rt
