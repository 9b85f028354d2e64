// Per-model serving metrics, rendered in Prometheus' text format (prefix `pyflame_`, names
// after Triton's nv_inference_*, which users already chart).
//
//   Metrics metrics;
//   ModelMetrics& m = metrics.model("tiny_cnn", "1");
//   m.record_success(request_us, queue_us, compute_us, /*inferences=*/1);
//   m.record_failure("invalid_argument");
//   std::string text = metrics.render();   // GET /metrics
//
// Counters and histograms are lock-free atomics updated from any thread; only failure reasons
// (rare) and the model table take a mutex. Latencies are histograms so p50/p99 can be derived.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pyflame_rt::net {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // ascending; +Inf is implied
  void observe(double value);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;
  // Cumulative counts per bound, then +Inf (what Prometheus' `_bucket` lines carry).
  std::vector<uint64_t> cumulative() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};  // added with a compare-exchange loop
};

// Bounds in microseconds (10 us .. 10 s) and in requests per model run (1 .. 256).
std::vector<double> latency_buckets_us();
std::vector<double> batch_size_buckets();

class ModelMetrics {
 public:
  ModelMetrics(std::string model, std::string version);

  // One request answered: latencies in microseconds; `inferences` = rows it carried.
  void record_success(double request_us, double queue_us, double compute_us, int64_t inferences);
  void record_failure(const std::string& reason);
  // One model run of `batch_size` requests (count it once per run, not per request).
  void record_execution(int batch_size);
  void enter() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void leave() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  const std::string& model() const { return model_; }
  const std::string& version() const { return version_; }
  uint64_t successes() const { return success_.load(); }
  uint64_t failures(const std::string& reason) const;
  uint64_t failures_total() const;
  uint64_t executions() const { return exec_count_.load(); }
  uint64_t inferences() const { return inference_count_.load(); }
  int64_t in_flight() const { return in_flight_.load(); }
  const Histogram& request_duration() const { return request_us_; }
  const Histogram& queue_duration() const { return queue_us_; }
  const Histogram& compute_duration() const { return compute_us_; }
  const Histogram& batch_size() const { return batch_size_; }
  std::map<std::string, uint64_t> failure_counts() const;

 private:
  std::string model_, version_;
  std::atomic<uint64_t> success_{0}, inference_count_{0}, exec_count_{0};
  std::atomic<int64_t> in_flight_{0};
  Histogram request_us_, queue_us_, compute_us_, batch_size_;
  mutable std::mutex failures_mu_;
  std::map<std::string, uint64_t> failures_;
};

class Metrics {
 public:
  // The metrics of one model version, created on first use; they outlive an unload so a
  // reload keeps counting (Prometheus counters must not go back).
  std::shared_ptr<ModelMetrics> model(const std::string& name, const std::string& version);
  // Failures that belong to no loaded model: unknown model, unparsable request, body too large.
  void record_server_failure(const std::string& reason);
  uint64_t server_failures(const std::string& reason) const;
  // Listener events that are not failures, by name (ZeroMQ: frames missing in a stream's seq).
  void count_event(const std::string& event, uint64_t n = 1);
  uint64_t events(const std::string& event) const;
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<ModelMetrics>> models_;
  std::map<std::string, uint64_t> server_failures_;
  std::map<std::string, uint64_t> events_;
};

}  // namespace pyflame_rt::net
