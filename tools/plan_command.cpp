// `pyflame-rt plan MODEL --device wse3 [--json] [--svg FILE] [--fabric WxH] [--artifacts DIR]`:
// the model optimised as sessions optimise it, compiled by the device from the registry, and the
// device's report (Executable::report_json) printed as a table or as JSON; --svg draws the
// placement, --artifacts has the device write each partition's CSL there. Symbolic input dims
// are taken as 1. When shapes are known only after a run, the plan runs the model once on
// zeros (the wafer places it on its first run) and says so.
#include "plan_command.h"

#include <memory>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_command.h"
#include "compiler/pass_registry.h"
#include "compiler/pipeline.h"
#include "devices/device_registry.h"
#include "graph/model_loader.h"

namespace pyflame_rt {

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string pad_right(std::string s, size_t n) {
  if (s.size() < n) s.append(n - s.size(), ' ');
  return s + " ";
}

Expected<nlohmann::json> plan_report(const std::string& model, const std::string& device, const DeviceConfig& cfg,
                                     bool* ran) {
  ASSIGN_OR_RETURN(Graph graph, load_model_file(model));
  for (auto& in : graph.inputs) {  // symbolic dims (batch) as 1
    for (auto& d : in.shape.dims) {
      if (!d.known()) d = Dim(1);
    }
  }
  ASSIGN_OR_RETURN(graph, optimize_graph(std::move(graph), OptLevel::kExtended, {}));
  ASSIGN_OR_RETURN(std::unique_ptr<Device> dev, DeviceRegistry::global().create(device, cfg));
  ASSIGN_OR_RETURN(graph, run_passes(std::move(graph), dev->pass_names(OptLevel::kExtended), {}));
  DeviceClaim claim = dev->claim(graph, std::vector<bool>(graph.nodes.size(), false));
  if (!claim.declined.empty()) {
    const auto& [index, why] = *claim.declined.begin();
    return not_implemented("device ", dev->name(), " does not take ", claim.declined.size(), " node(s) of ", model,
                           ", first ", graph.nodes[index].op_type, " '", graph.nodes[index].name, "': ", why);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Executable> exe, dev->compile(graph));
  std::string text = exe->report_json();
  if (text.empty()) return not_implemented("device ", dev->name(), " has no placement report");
  nlohmann::json report = nlohmann::json::parse(text);
  if (report.value("placed", true) == false) {
    std::vector<Value> zeros;
    for (const auto& in : graph.inputs) {
      Dims d;
      for (const auto& x : in.shape.dims) d.push_back(x.known() ? x.value : 1);
      Tensor t(in.dtype == DType::kUndefined ? DType::kFloat32 : in.dtype, d);
      if (t.dtype() == DType::kFloat32) std::fill(t.data<float>(), t.data<float>() + t.numel(), 0.0f);
      zeros.emplace_back(std::move(t));
    }
    ASSIGN_OR_RETURN(auto outs, exe->run(std::move(zeros)));
    (void)outs;
    *ran = true;
    report = nlohmann::json::parse(exe->report_json());
  }
  return report;
}

}  // namespace

std::string plan_table(const nlohmann::json& r) {
  std::ostringstream os;
  os << "device                " << r.value("device", "") << " (strategy " << r.value("strategy", "") << ", fabric "
     << r["fabric"][0] << " x " << r["fabric"][1] << " PEs, " << r.value("systems", 1) << " system(s), "
     << r.value("replicas", 1) << " replica(s))\n";
  os << "partitions            " << r["partitions"].size() << "\n";
  os << "  " << pad_right("id", 4) << pad_right("pes", 9) << pad_right("rect [x,y,w,h]", 22) << pad_right("sram_max", 9)
     << pad_right("sram_mean", 10) << pad_right("colors", 10) << pad_right("est_cycles", 12) << "ops\n";
  for (const auto& p : r["partitions"]) {
    const auto& rc = p["rect"];
    std::string rect = "[" + rc[0].dump() + "," + rc[1].dump() + "," + rc[2].dump() + "," + rc[3].dump() + "]";
    std::string colors;
    for (const auto& c : p["colors"]) colors += (colors.empty() ? "" : ",") + c.dump();
    std::string ops;
    for (const auto& o : p["ops"]) ops += (ops.empty() ? "" : " ") + o.value("node", "");
    if (ops.size() > 60) ops = ops.substr(0, 57) + "...";
    os << "  " << pad_right(p["id"].dump(), 4) << pad_right(p["pes"].dump(), 9) << pad_right(rect, 22)
       << pad_right(p["sram_bytes_max"].dump(), 9) << pad_right(p["sram_bytes_mean"].dump(), 10)
       << pad_right(colors.empty() ? "-" : colors, 10) << pad_right(fixed(p.value("est_cycles", 0.0), 0), 12) << ops
       << "\n";
  }
  os << "pes_used              " << r.value("pes_used", int64_t{0}) << "\n";
  os << "utilisation           " << fixed(100 * r.value("utilisation", 0.0), 2) << " %\n";
  os << "est_latency_us        " << fixed(r.value("est_latency_us", 0.0), 1) << "\n";
  os << "est_throughput_per_s  " << fixed(r.value("est_throughput_per_s", 0.0), 1) << "\n";
  os << "host_io_us            " << fixed(r.value("host_io_us", 0.0), 1) << "\n";
  if (r.contains("csl")) {
    const auto& c = r["csl"];
    os << "csl                   " << c["written"].size() << " partition(s) written to " << c.value("dir", "");
    if (!c["failed"].empty()) os << ", " << c["failed"].size() << " not generated:";
    os << "\n";
    for (const auto& [id, why] : c["failed"].items()) os << "  " << id << ": " << why.get<std::string>() << "\n";
  }
  os << "(" << r.value("hardware", std::string("a model, not a measurement")) << ")\n";
  return os.str();
}

namespace {

struct PlanOptions {
  std::string model, device = "wse3", svg, fabric, artifacts;
  bool json = false;
};

int plan(const PlanOptions& o) {
  const std::string& model = o.model;
  const std::string& device = o.device;
  const std::string& svg = o.svg;
  const std::string& fabric = o.fabric;
  const std::string& artifacts = o.artifacts;
  const bool json = o.json;
  DeviceConfig cfg;
  cfg.num_threads = 1;
  cfg.artifacts_dir = artifacts;
  if (!fabric.empty()) cfg.options["fabric"] = fabric;
  bool ran = false;
  auto report = plan_report(model, device, cfg, &ran);
  if (!report.ok()) return cli_fail(report.status());
  if (!report->contains("partitions") || !report->contains("fabric")) {
    return cli_fail(not_implemented("device ", device, " reports no placement: ", report->dump()));
  }
  if (json) std::cout << report->dump(2) << "\n";
  else std::cout << plan_table(*report) << (ran ? "(placed on a first run on zeros: the model's shapes are known only then)\n" : "");
  if (!svg.empty()) {
    std::ofstream f(svg, std::ios::binary | std::ios::trunc);
    f << plan_svg(*report);
    if (!f) return cli_fail(make_status(StatusCode::kNoSuchFile, "cannot write --svg '", svg, "'"));
    if (!json) std::cout << "placement drawn in " << svg << "\n";
  }
  return 0;
}

}  // namespace

CliCommand add_plan_command(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* sub = add_cli_subcommand(app, "plan", "place a model on the wafer: the device report, an SVG of the fabric, the CSL");
  sub->add_option("model", o->model, "ONNX or .pfm model")->required();
  sub->add_option("--device", o->device, "wafer device (wse3, wse2)")->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sub->add_flag("--json", o->json, "print the report as JSON");
  sub->add_option("--svg", o->svg, "draw the placement on the fabric into this SVG file");
  sub->add_option("--fabric", o->fabric, "a reduced fabric, WxH (e.g. 192x192)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sub->add_option("--artifacts", o->artifacts, "write the CSL program of every partition here");
  return {sub, [o] { return plan(*o); }};
}

}  // namespace pyflame_rt
