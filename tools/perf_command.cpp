// `pyflame-rt perf MODEL`: latency and throughput in the manner of trtexec and
// onnxruntime_perf_test.
//
//   pyflame-rt perf resnet50.onnx --batch 8 --threads 2 --iterations 200 --warmup 20
//   pyflame-rt perf encoder.onnx --shapes ids=1x128,mask=1x128 --duration 10 --json
//   pyflame-rt perf model.onnx --input x=x.npy --export-profile trace.json
//
// Runs stop once both --iterations runs are done and --duration seconds have passed (both are
// minimums, as in trtexec). Each run is timed on its own with a steady clock; throughput is
// runs and samples (runs x batch) per second of wall time over the measured runs.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <nlohmann/json.hpp>

#include "session/inference_session.h"
#include "cli_command.h"
#include "perf_inputs.h"
#include "perf_stats.h"

namespace pyflame_rt {
namespace {

struct PerfOptions {
  std::string model;
  size_t iterations = 100;
  double duration_s = 0;
  size_t warmup = 10;
  int threads = 0;
  PerfFeedSpec feed;
  std::string precision = "fp32";
  std::string device = "cpu";
  int opt_level = 99;
  bool json = false;
  std::string export_profile;
};

// --device -> the session's providers (and SessionOptions.device), as a user of ORT would ask.
Status apply_device(const std::string& device, SessionOptions* opts, std::vector<std::string>* providers) {
  if (device == "cpu") {
    *providers = {kCpuProvider};
  } else if (device == "cerebras" || device == "wse" || device == "wse2" || device == "wse3") {
    opts->device = device == "cerebras" ? "wse" : device;
    *providers = {kCerebrasProvider, kCpuProvider};  // the session warns and falls back when no wafer
  } else if (device.size() > 17 && device.compare(device.size() - 17, 17, "ExecutionProvider") == 0) {
    *providers = {device};  // a provider name, checked by the session
  } else {
    return invalid_argument("--device: expected cpu, cerebras, wse, wse2, wse3 or a provider name, got '", device,
                            "'");
  }
  return Status::OK();
}

Status check_precision(const std::string& precision) {
  if (precision == "fp32") return Status::OK();
  return not_implemented("--precision ", precision,
                         " is not available yet: PyFlameRT computes in fp32 today (reduced precision and "
                         "quantization are planned)");
}

Expected<OptLevel> opt_level_of(int level) {
  switch (level) {
    case 0: return OptLevel::kNone;
    case 1: return OptLevel::kBasic;
    case 2: return OptLevel::kExtended;
    case 99: return OptLevel::kAll;
    default: return invalid_argument("--opt-level: expected 0, 1, 2 or 99 (ORT's levels), got ", level);
  }
}

std::string dims_text(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// A separate profiled session, so the measured runs carry no profiling cost.
Expected<std::string> export_profile(const PerfOptions& o, SessionOptions opts, const std::vector<std::string>& providers,
                                     const std::map<std::string, Tensor>& feeds) {
  opts.enable_profiling = true;
  opts.profile_file_prefix = (std::filesystem::temp_directory_path() / "pyflame_rt_perf").string();
  ASSIGN_OR_RETURN(auto session, InferenceSession::create(o.model, opts, providers));
  size_t runs = std::max<size_t>(1, std::min<size_t>(o.iterations, 10));
  for (size_t i = 0; i < runs; ++i) {
    ASSIGN_OR_RETURN(auto outs, session->run({}, feeds));
  }
  ASSIGN_OR_RETURN(std::string written, session->end_profiling());
  std::error_code ec;
  std::filesystem::rename(written, o.export_profile, ec);
  if (ec) {  // another filesystem: copy instead
    std::filesystem::copy_file(written, o.export_profile, std::filesystem::copy_options::overwrite_existing, ec);
    std::filesystem::remove(written);
    if (ec) {
      return make_status(StatusCode::kNoSuchFile, "--export-profile: cannot write '", o.export_profile,
                         "': ", ec.message());
    }
  }
  return o.export_profile;
}

int perf(const PerfOptions& o) {
  Status st = check_precision(o.precision);
  if (!st.ok()) return cli_fail(st);
  if (o.iterations == 0 && o.duration_s <= 0) {
    return cli_fail(invalid_argument("--iterations 0 and --duration 0: nothing would be measured"));
  }
  SessionOptions opts;
  opts.num_threads = o.threads;
  auto level = opt_level_of(o.opt_level);
  if (!level.ok()) return cli_fail(level.status());
  opts.optimization_level = *level;
  std::vector<std::string> providers;
  st = apply_device(o.device, &opts, &providers);
  if (!st.ok()) return cli_fail(st);

  auto created_at = std::chrono::steady_clock::now();
  auto session = InferenceSession::create(o.model, opts, providers);
  if (!session.ok()) return cli_fail(session.status());
  double create_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - created_at).count();
  for (const auto& w : (*session)->warnings()) std::cerr << "warning: " << w << "\n";
  auto feed = make_perf_feed((*session)->inputs(), o.feed);
  if (!feed.ok()) return cli_fail(feed.status());

  for (size_t i = 0; i < o.warmup; ++i) {
    auto outs = (*session)->run({}, feed->tensors);
    if (!outs.ok()) return cli_fail(outs.status());
  }
  std::vector<double> latencies_ms;
  latencies_ms.reserve(o.iterations);
  auto start = std::chrono::steady_clock::now();
  double elapsed_s = 0;
  while (latencies_ms.size() < o.iterations || elapsed_s < o.duration_s) {
    auto t0 = std::chrono::steady_clock::now();
    auto outs = (*session)->run({}, feed->tensors);
    auto t1 = std::chrono::steady_clock::now();
    if (!outs.ok()) return cli_fail(outs.status());
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    elapsed_s = std::chrono::duration<double>(t1 - start).count();
  }
  LatencyStats stats = summarize_latencies(latencies_ms, elapsed_s);
  // Samples per run: the first dim of the first input (the batch), 1 for scalars or no inputs.
  int64_t batch = 1;
  if (!(*session)->inputs().empty()) {
    const Tensor& first = feed->tensors.at((*session)->inputs().front().name);
    if (first.rank() > 0) batch = first.dim(0);
  }

  std::string profile;
  if (!o.export_profile.empty()) {
    auto written = export_profile(o, opts, providers, feed->tensors);
    if (!written.ok()) return cli_fail(written.status());
    profile = *written;
  }

  if (o.json) {
    nlohmann::json j;
    j["version"] = PFRT_VERSION_STRING;
    j["model"] = o.model;
    j["device"] = o.device;
    j["providers"] = (*session)->providers();
    j["threads"] = o.threads;
    j["precision"] = o.precision;
    j["session_create_ms"] = create_ms;
    j["inputs"] = nlohmann::json::array();
    for (const auto& info : (*session)->inputs()) {
      const Tensor& t = feed->tensors.at(info.name);
      j["inputs"].push_back({{"name", info.name}, {"dtype", dtype_name(t.dtype())}, {"shape", t.dims()},
                             {"source", feed->sources.at(info.name)}});
    }
    j["batch"] = batch;
    j["warmup_runs"] = o.warmup;
    j["runs"] = stats.runs;
    j["total_s"] = stats.total_s;
    j["latency_ms"] = {{"mean", stats.mean_ms}, {"std", stats.std_ms}, {"min", stats.min_ms},
                       {"max", stats.max_ms},   {"p50", stats.p50_ms}, {"p90", stats.p90_ms},
                       {"p95", stats.p95_ms},   {"p99", stats.p99_ms}};
    j["throughput"] = {{"runs_per_s", stats.runs_per_s},
                       {"samples_per_s", stats.runs_per_s * static_cast<double>(batch)}};
    if (!profile.empty()) j["profile"] = profile;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << std::fixed << std::setprecision(3);
  std::cout << "model: " << o.model << "\n";
  std::cout << "providers:";
  for (const auto& p : (*session)->providers()) std::cout << " " << p;
  std::cout << "  threads: " << (o.threads ? std::to_string(o.threads) : std::string("all cores"))
            << "  precision: " << o.precision << "\n";
  std::cout << "session created in " << create_ms << " ms\n";
  for (const auto& info : (*session)->inputs()) {
    const Tensor& t = feed->tensors.at(info.name);
    std::cout << "input " << info.name << ": " << dtype_name(t.dtype()) << dims_text(t.dims()) << " ("
              << feed->sources.at(info.name) << ")\n";
  }
  std::cout << "warmup: " << o.warmup << " runs; measured: " << stats.runs << " runs in " << stats.total_s << " s\n";
  std::cout << "latency (ms): mean " << stats.mean_ms << "  std " << stats.std_ms << "  min " << stats.min_ms
            << "  max " << stats.max_ms << "\n";
  std::cout << "latency (ms): p50 " << stats.p50_ms << "  p90 " << stats.p90_ms << "  p95 " << stats.p95_ms
            << "  p99 " << stats.p99_ms << "\n";
  std::cout << "throughput: " << stats.runs_per_s << " runs/s, " << stats.runs_per_s * static_cast<double>(batch)
            << " samples/s (batch " << batch << ")\n";
  if (!profile.empty()) std::cout << "profile: " << profile << "\n";
  return 0;
}

}  // namespace

CliCommand add_perf_command(CLI::App& app) {
  auto o = std::make_shared<PerfOptions>();
  CLI::App* sub = add_cli_subcommand(app, "perf", "measure latency (p50/p90/p99) and throughput of a model");
  sub->add_option("model", o->model, "ONNX or .pfm model")->required();
  sub->add_option("--iterations", o->iterations, "measured runs, at least")->capture_default_str();
  sub->add_option("--duration", o->duration_s, "seconds to keep running, at least")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--warmup", o->warmup, "runs before measuring")->capture_default_str();
  sub->add_option("--threads", o->threads, "intra-op threads, 0 = one per core")->check(CLI::Range(0, 1024))
      ->capture_default_str();
  sub->add_option("--batch", o->feed.batch, "size of a symbolic first dim of random inputs")
      ->check(CLI::PositiveNumber);
  sub->add_option("--shapes", o->feed.shapes, "NAME=1x3x224x224 (comma-separated or repeated)")
      ->allow_extra_args(false);
  sub->add_option("--input", o->feed.files, "NAME=FILE.npy: real data for an input (others are random)")
      ->allow_extra_args(false);
  sub->add_option("--seed", o->feed.seed, "seed of the random inputs")->capture_default_str();
  sub->add_option("--precision", o->precision, "fp32 (fp16, bf16, int8: not available yet)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16", "int8", "best"}))->capture_default_str();
  sub->add_option("--device", o->device, "cpu, cerebras/wse (through the session's providers) or a provider name")
      ->capture_default_str();
  sub->add_option("--opt-level", o->opt_level, "graph optimisation: 0, 1, 2 or 99 (ORT's levels)")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "print the report as JSON");
  sub->add_option("--export-profile", o->export_profile,
                  "write a per-node trace (Chrome trace JSON) of 10 extra profiled runs to FILE");
  return {sub, [o] { return perf(*o); }};
}

}  // namespace pyflame_rt
