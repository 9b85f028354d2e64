// pyflame-bench-wse: runs models on the wafer model (placement + mesh simulator) and on the CPU
// device, and prints per model: the normalised L2 error of every output, the simulator's wall
// time, the nodes on the wafer and the placement report's headline figures. The simulated
// ResNet-50 on a reduced fabric must finish within 60 s on 2 cores (the target).
//
//   build/bin/pyflame-bench-wse [--fabric WxH] MODEL.onnx...
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "compiler/pipeline.h"
#include "devices/device_registry.h"
#include "graph/model_loader.h"

using namespace pyflame_rt;

namespace {

double normalised_l2(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    num += d * d;
    den += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  return std::sqrt(num) / std::max(1e-30, std::sqrt(den));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int run_model(const std::string& path, const std::map<std::string, std::string>& options) {
  auto loaded = load_model_file(path);
  if (!loaded.ok()) return std::fprintf(stderr, "%s\n", loaded.status().to_string().c_str()), 1;
  auto g = optimize_graph(std::move(*loaded), OptLevel::kExtended, {});
  if (!g.ok()) return std::fprintf(stderr, "%s\n", g.status().to_string().c_str()), 1;
  std::vector<Value> feeds;
  std::mt19937 rng(0);
  std::normal_distribution<float> n01(0, 1);
  for (const auto& in : g->inputs) {
    Dims d;
    for (const auto& x : in.shape.dims) d.push_back(x.known() ? x.value : 1);
    Tensor t(DType::kFloat32, d);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = in.name == "h0" ? 0.f : n01(rng);
    feeds.emplace_back(t);
  }
  DeviceConfig cfg;
  cfg.options = options;
  auto wse = DeviceRegistry::global().create("wse3", cfg);
  auto cpu = DeviceRegistry::global().create("cpu", DeviceConfig{});
  if (!wse.ok() || !cpu.ok()) return std::fprintf(stderr, "no device\n"), 1;
  DeviceClaim claim = (*wse)->claim(*g, std::vector<bool>(g->nodes.size(), false));
  size_t claimed = 0;
  for (const auto& grp : claim.groups) claimed += grp.size();
  for (const auto& [i, why] : claim.declined) std::printf("  declined %s: %s\n", g->nodes[i].name.c_str(), why.c_str());
  auto t0 = std::chrono::steady_clock::now();
  auto wexe = (*wse)->compile(*g);
  double compile_s = seconds_since(t0);
  if (!wexe.ok()) return std::fprintf(stderr, "%s\n", wexe.status().to_string().c_str()), 1;
  auto cexe = (*cpu)->compile(*g);
  auto c = (*cexe)->run(feeds);
  t0 = std::chrono::steady_clock::now();
  auto w = (*wexe)->run(feeds);
  double run_s = seconds_since(t0);
  if (!w.ok() || !c.ok()) return std::fprintf(stderr, "%s\n", (w.ok() ? c : w).status().to_string().c_str()), 1;
  double worst = 0;
  for (size_t i = 0; i < w->size(); ++i) worst = std::max(worst, normalised_l2((*w)[i].tensor, (*c)[i].tensor));
  auto r = nlohmann::json::parse((*wexe)->report_json());
  std::printf("%s: %zu/%zu nodes on the wafer, normalised L2 error vs cpu %.3g, placement %.2f s, simulation %.2f s\n",
              path.c_str(), claimed, g->nodes.size(), worst, compile_s, run_s);
  std::printf("  strategy %s, %zu partitions, replicas %d, pes_used %lld, utilisation %.3f, sram max %lld mean %lld B\n",
              r["strategy"].get<std::string>().c_str(), r["partitions"].size(), r["replicas"].get<int>(),
              static_cast<long long>(r["pes_used"].get<int64_t>()), r["utilisation"].get<double>(),
              static_cast<long long>(r["sram_bytes_max"].get<int64_t>()), static_cast<long long>(r["sram_bytes_mean"].get<int64_t>()));
  std::printf("  est latency %.1f us (host I/O %.1f us), est throughput %.1f/s, %lld PE tiles simulated\n",
              r["est_latency_us"].get<double>(), r["host_io_us"].get<double>(), r["est_throughput_per_s"].get<double>(),
              static_cast<long long>(r["last_run"]["pe_tiles"].get<int64_t>()));
  std::printf("  cycles: est (longest path) %.0f, simulated (ops in sequence + transfers) %.0f; %lld PE rows simulated "
              "wavelet by wavelet, %zu ops computed whole-tensor\n",
              r["est_cycles"].get<double>(), r["last_run"]["simulated_cycles"].get<double>(),
              static_cast<long long>(r["last_run"]["rows_simulated_wavelet_level"].get<int64_t>()),
              r["last_run"]["whole_tensor_ops"].get<size_t>());
  std::map<std::string, int> whole;
  for (const auto& p : r["partitions"])
    for (const auto& op : p["ops"])
      if (op["simulation"] == "whole_tensor") ++whole[op["op"].get<std::string>()];
  std::string list;
  for (const auto& [op, n] : whole) list += (list.empty() ? "" : ", ") + op + " x" + std::to_string(n);
  std::printf("  whole-tensor ops (no arithmetic across PEs, or not yet tiled): %s\n", list.empty() ? "none" : list.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> options;
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--fabric" && i + 1 < argc) { options["fabric"] = argv[++i]; continue; }
    status |= run_model(a, options);
  }
  return status;
}
