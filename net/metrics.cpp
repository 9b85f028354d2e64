#include "net/metrics.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace pyflame_rt::net {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);  // shortest text that reads back exactly
  return std::string(buf, res.ptr);
}

std::string labels(const ModelMetrics& m, const std::string& extra = "") {
  std::string s = "{model=\"" + escape_label(m.model()) + "\",version=\"" + escape_label(m.version()) + "\"";
  if (!extra.empty()) s += "," + extra;
  return s + "}";
}

void header(std::ostringstream& os, const std::string& name, const char* type, const char* help) {
  os << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
}

void render_histogram(std::ostringstream& os, const std::string& name, const ModelMetrics& m, const Histogram& h) {
  std::vector<uint64_t> cum = h.cumulative();
  for (size_t i = 0; i < h.bounds().size(); ++i) {
    os << name << "_bucket" << labels(m, "le=\"" + number(h.bounds()[i]) + "\"") << ' ' << cum[i] << '\n';
  }
  os << name << "_bucket" << labels(m, "le=\"+Inf\"") << ' ' << cum.back() << '\n';
  os << name << "_sum" << labels(m) << ' ' << number(h.sum()) << '\n';
  os << name << "_count" << labels(m) << ' ' << cum.back() << '\n';
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double value) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  double old = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(old, old + value, std::memory_order_relaxed)) {
  }
  count_.fetch_add(1, std::memory_order_relaxed);
}

double Histogram::sum() const { return sum_.load(std::memory_order_relaxed); }

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t run = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    run += counts_[i].load(std::memory_order_relaxed);
    out[i] = run;
  }
  return out;
}

std::vector<double> latency_buckets_us() {
  return {10,    25,    50,    75,     100,    150,    200,    300, 500, 750, 1000,
          2000,  5000,  10000, 20000,  50000,  100000, 200000, 5e5, 1e6, 1e7};
}

std::vector<double> batch_size_buckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256}; }

ModelMetrics::ModelMetrics(std::string model, std::string version)
    : model_(std::move(model)), version_(std::move(version)), request_us_(latency_buckets_us()),
      queue_us_(latency_buckets_us()), compute_us_(latency_buckets_us()), batch_size_(batch_size_buckets()) {}

void ModelMetrics::record_success(double request_us, double queue_us, double compute_us, int64_t inferences) {
  success_.fetch_add(1, std::memory_order_relaxed);
  inference_count_.fetch_add(static_cast<uint64_t>(inferences), std::memory_order_relaxed);
  request_us_.observe(request_us);
  queue_us_.observe(queue_us);
  compute_us_.observe(compute_us);
}

void ModelMetrics::record_failure(const std::string& reason) {
  std::lock_guard<std::mutex> lock(failures_mu_);
  ++failures_[reason];
}

void ModelMetrics::record_execution(int batch_size) {
  exec_count_.fetch_add(1, std::memory_order_relaxed);
  batch_size_.observe(batch_size);
}

uint64_t ModelMetrics::failures(const std::string& reason) const {
  std::lock_guard<std::mutex> lock(failures_mu_);
  auto it = failures_.find(reason);
  return it == failures_.end() ? 0 : it->second;
}

uint64_t ModelMetrics::failures_total() const {
  std::lock_guard<std::mutex> lock(failures_mu_);
  uint64_t n = 0;
  for (const auto& [reason, c] : failures_) n += c;
  return n;
}

std::map<std::string, uint64_t> ModelMetrics::failure_counts() const {
  std::lock_guard<std::mutex> lock(failures_mu_);
  return failures_;
}

std::shared_ptr<ModelMetrics> Metrics::model(const std::string& name, const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = models_[{name, version}];
  if (!slot) slot = std::make_shared<ModelMetrics>(name, version);
  return slot;
}

void Metrics::record_server_failure(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++server_failures_[reason];
}

uint64_t Metrics::server_failures(const std::string& reason) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = server_failures_.find(reason);
  return it == server_failures_.end() ? 0 : it->second;
}

void Metrics::count_event(const std::string& event, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  events_[event] += n;
}

uint64_t Metrics::events(const std::string& event) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = events_.find(event);
  return it == events_.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  std::vector<std::shared_ptr<ModelMetrics>> models;
  std::map<std::string, uint64_t> server, events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, m] : models_) models.push_back(m);
    server = server_failures_;
    events = events_;
  }
  std::ostringstream os;
  auto counter = [&](const char* name, const char* help, auto value) {
    header(os, name, "counter", help);
    for (const auto& m : models) os << name << labels(*m) << ' ' << value(*m) << '\n';
  };
  counter("pyflame_inference_request_success_total", "Inference requests answered with outputs.",
          [](const ModelMetrics& m) { return m.successes(); });
  header(os, "pyflame_inference_request_failure_total", "counter",
         "Inference requests answered with an error, by reason.");
  for (const auto& m : models) {
    for (const auto& [reason, n] : m->failure_counts()) {
      os << "pyflame_inference_request_failure_total" << labels(*m, "reason=\"" + escape_label(reason) + "\"") << ' '
         << n << '\n';
    }
  }
  counter("pyflame_inference_count_total", "Inferences performed (a request of N rows counts N).",
          [](const ModelMetrics& m) { return m.inferences(); });
  counter("pyflame_inference_exec_count_total", "Model runs (batches); inference_count / exec_count = mean batch.",
          [](const ModelMetrics& m) { return m.executions(); });
  header(os, "pyflame_inference_in_flight", "gauge", "Requests accepted and not yet answered.");
  for (const auto& m : models) os << "pyflame_inference_in_flight" << labels(*m) << ' ' << m->in_flight() << '\n';

  auto histogram = [&](const char* name, const char* help, const Histogram& (ModelMetrics::*h)() const) {
    header(os, name, "histogram", help);
    for (const auto& m : models) render_histogram(os, name, *m, ((*m).*h)());
  };
  histogram("pyflame_inference_request_duration_us", "End-to-end request time in the server, microseconds.",
            &ModelMetrics::request_duration);
  histogram("pyflame_inference_queue_duration_us", "Time waiting in the batching queue, microseconds.",
            &ModelMetrics::queue_duration);
  histogram("pyflame_inference_compute_duration_us", "Model run time of the batch that answered, microseconds.",
            &ModelMetrics::compute_duration);
  histogram("pyflame_inference_batch_size", "Requests per model run.", &ModelMetrics::batch_size);

  header(os, "pyflame_server_request_failure_total", "counter",
         "Requests refused before reaching a loaded model, by reason.");
  for (const auto& [reason, n] : server) {
    os << "pyflame_server_request_failure_total{reason=\"" << escape_label(reason) << "\"} " << n << '\n';
  }
  if (!events.empty()) {
    header(os, "pyflame_server_events_total", "counter", "Listener events that are not failures, by event.");
    for (const auto& [event, n] : events) {
      os << "pyflame_server_events_total{event=\"" << escape_label(event) << "\"} " << n << '\n';
    }
  }
  return os.str();
}

}  // namespace pyflame_rt::net
