// The wafer device and its executable (wse_device.h).
#include "devices/wse/wse_device.h"

#include <mutex>
#include <nlohmann/json.hpp>

#include "compiler/csl/from_mesh_plan.h"
#include "devices/wse/lowering.h"
#include "devices/wse/mesh_simulator.h"
#include "devices/wse/placement.h"

namespace pyflame_rt {

namespace {

class WseExecutable : public Executable {
 public:
  WseExecutable(Graph graph, WseSpec spec, std::string artifacts_dir)
      : graph_(std::move(graph)), spec_(std::move(spec)), artifacts_dir_(std::move(artifacts_dir)) {}

  // Places the graph now if every shape is known; otherwise the first run discovers them.
  Status prepare() {
    auto plan = plan_mesh(graph_, spec_);
    if (plan.ok()) {
      sim_ = std::make_shared<MeshSimulator>(graph_, std::move(*plan), spec_);
      emit_csl();
      return Status::OK();
    }
    if (plan.status().message().find("shape inference left unknown") == std::string::npos) return plan.status();
    deferred_ = plan.status().message();
    return Status::OK();
  }

  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override {
    ASSIGN_OR_RETURN(auto sim, simulator(inputs));
    MeshRunStats stats;
    ASSIGN_OR_RETURN(auto out, sim->run(std::move(inputs), &stats));
    std::lock_guard<std::mutex> lock(mu_);
    last_ = std::move(stats);
    return out;
  }

  std::vector<NodeKernel> node_kernels() const override {
    std::vector<NodeKernel> out;
    for (const Node& n : graph_.nodes) out.push_back({n.name, n.op_type, spec_.name, "native"});
    return out;
  }

  std::string report_json() const override {
    std::shared_ptr<MeshSimulator> sim;
    MeshRunStats last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sim = sim_;
      last = last_;
    }
    if (!sim) {
      nlohmann::json j;
      j["device"] = spec_.name;
      j["placed"] = false;
      j["why"] = "placement waits for the first run: " + deferred_;
      return j.dump();
    }
    nlohmann::json j = nlohmann::json::parse(mesh_plan_json(sim->plan(), spec_));
    nlohmann::json run;
    run["simulated_cycles"] = last.cycles;
    run["pe_tiles"] = last.pe_tiles;
    nlohmann::json w = nlohmann::json::object();
    for (const auto& [c, n] : last.wavelets) w[std::to_string(c)] = n;
    run["wavelets_per_color"] = w;
    run["whole_tensor_ops"] = last.whole_tensor_ops.size();
    run["rows_simulated_wavelet_level"] = last.rows_simulated;
    j["last_run"] = run;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!csl_.is_null()) j["csl"] = csl_;
    }
    return j.dump();
  }

 private:
  // The simulator, placing the graph on the first run when shapes were unknown at compile time:
  // a run on one PE's split discovers every shape, then placement proceeds as at compile time.
  Expected<std::shared_ptr<MeshSimulator>> simulator(const std::vector<Value>& inputs) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (sim_) return sim_;
    MeshSimulator probe(graph_, MeshPlan{}, spec_);
    std::map<std::string, Dims> shapes;
    MeshRunStats ignored;
    ASSIGN_OR_RETURN(auto outs, probe.run(inputs, &ignored, &shapes));
    Graph g = graph_;
    for (size_t i = 0; i < inputs.size() && i < g.inputs.size(); ++i) {
      if (inputs[i].is_tensor()) g.inputs[i].shape = Shape::from_dims(inputs[i].tensor.dims());
    }
    for (const auto& [name, dims] : shapes) {
      ValueInfo& vi = g.value_info[name];
      vi.name = name;
      if (vi.dtype == DType::kUndefined) vi.dtype = DType::kFloat32;
      vi.shape = Shape::from_dims(dims);
    }
    for (auto& o : g.outputs) if (shapes.count(o.name)) o.shape = Shape::from_dims(shapes[o.name]);
    ASSIGN_OR_RETURN(MeshPlan plan, plan_mesh(g, spec_));
    sim_ = std::make_shared<MeshSimulator>(graph_, std::move(plan), spec_);
    emit_csl();
    return sim_;
  }

  // The CSL of every partition into DeviceConfig.artifacts_dir (compiler/csl), once placed. A
  // partition whose CSL cannot be generated is reported, not fatal: the simulator runs it.
  void emit_csl() const {
    if (artifacts_dir_.empty()) return;
    csl::PlanCsl out = csl::write_plan_csl(sim_->plan(), spec_, &graph_, artifacts_dir_);
    nlohmann::json j;
    j["dir"] = artifacts_dir_;
    j["written"] = nlohmann::json::array();
    for (const auto& p : out.written) j["written"].push_back(p.name);
    j["failed"] = nlohmann::json::object();
    for (const auto& [id, st] : out.failed) j["failed"]["p" + std::to_string(id)] = st.to_string();
    csl_ = j;
  }

  Graph graph_;
  WseSpec spec_;
  std::string artifacts_dir_;
  mutable nlohmann::json csl_;
  std::string deferred_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<MeshSimulator> sim_;
  mutable MeshRunStats last_;
};

class WseDevice : public Device {
 public:
  WseDevice(WseSpec spec, std::string artifacts_dir) : spec_(std::move(spec)), artifacts_dir_(std::move(artifacts_dir)) {
    caps_.dtypes = {DType::kFloat32};
    caps_.ops = wse_supported_ops();
  }
  std::string name() const override { return spec_.name; }
  const DeviceCapabilities& capabilities() const override { return caps_; }

  std::string why_not(const Graph& graph, const Node& node) const override { return wse_why_not(graph, node); }

  std::vector<std::string> pass_names(OptLevel level) const override {
    if (level == OptLevel::kNone) return {};
    return {kMeshLayoutPassName};
  }

  double cost(const Graph& graph, const Node& node) const override {
    ShapeMap shapes = known_shapes(graph);
    auto op = describe_op(graph, node, shapes);
    if (!op.ok()) return 1.0;
    return static_cast<double>(op->gemm.m) * static_cast<double>(op->gemm.k) * static_cast<double>(op->gemm.n) * 1e-9 + 1e-6;
  }

  Expected<std::unique_ptr<Executable>> compile(const Graph& partition) override {
    for (const Node& n : partition.nodes) {
      std::string why = wse_why_not(partition, n);
      if (!why.empty()) return n.error(StatusCode::kNotImplemented, spec_.name, ": ", why);
    }
    auto exe = std::make_unique<WseExecutable>(partition, spec_, artifacts_dir_);
    RETURN_IF_ERROR(exe->prepare());
    return std::unique_ptr<Executable>(std::move(exe));
  }

 private:
  WseSpec spec_;
  std::string artifacts_dir_;  // where compile() writes each partition's CSL ("" = nowhere)
  DeviceCapabilities caps_;
};

DeviceEntry wse_entry(WseGeneration generation, const char* name, const char* summary) {
  DeviceEntry e;
  e.name = name;
  e.provider = "CerebrasExecutionProvider";
  e.summary = summary;
  e.create = [generation](const DeviceConfig& config) { return make_wse_device(wse_spec(generation), config); };
  return e;
}

}  // namespace

Expected<std::unique_ptr<Device>> make_wse_device(const WseSpec& base, const DeviceConfig& config) {
  ASSIGN_OR_RETURN(WseSpec spec, wse_spec_with_options(base, config.options));
  return std::unique_ptr<Device>(new WseDevice(std::move(spec), config.artifacts_dir));
}

std::string mesh_plan_json(const MeshPlan& plan, const WseSpec& spec) {
  using nlohmann::json;
  json j;
  j["device"] = plan.device;
  j["generation"] = spec.name;
  j["strategy"] = plan.strategy;
  j["fabric"] = {plan.fabric_width, plan.fabric_height};
  j["systems"] = plan.systems;
  j["replicas"] = plan.replicas;
  json parts = json::array();
  for (const auto& p : plan.partitions) {
    json pj;
    pj["id"] = p.id;
    pj["pes"] = p.rect.pes();
    pj["rect"] = {p.rect.x, p.rect.y, p.rect.w, p.rect.h};
    pj["system"] = p.rect.system;
    pj["sram_bytes_max"] = p.sram_bytes_max;
    pj["sram_bytes_mean"] = p.sram_bytes_mean;
    pj["colors"] = p.colors;
    pj["est_cycles"] = p.est_cycles;
    json ops = json::array();
    for (const auto& op : p.ops) {
      json oj;
      oj["node"] = op.node;
      oj["op"] = op.op_type;
      oj["kind"] = mesh_op_kind_name(op.kind);
      oj["split"] = {{"m", op.split.m_parts}, {"k", op.split.k_parts}, {"n", op.split.n_parts},
                     {"grid", {op.split.width(), op.split.height()}}};
      oj["sram_bytes_max"] = op.sram_bytes_max;
      oj["est_cycles"] = op.cycles.total;
      oj["simulation"] = op.simulation;
      ops.push_back(oj);
    }
    pj["ops"] = ops;
    parts.push_back(pj);
  }
  j["partitions"] = parts;
  j["transfers"] = plan.transfers.size();
  j["pes_used"] = plan.pes_used;
  j["utilisation"] = plan.utilisation;
  j["sram_bytes_max"] = plan.sram_bytes_max;
  j["sram_bytes_mean"] = plan.sram_bytes_mean;
  j["est_cycles"] = plan.est_cycles;
  j["est_latency_us"] = plan.est_latency_us;
  j["est_throughput_per_s"] = plan.est_throughput_per_s;
  j["host_io_us"] = plan.host_io_us;
  // What the numbers rest on: the functional results cover every PE; the cycles are the cost
  // model's, per PE, not a wavelet-by-wavelet timing.
  j["extrapolated"] = {
      {"cycles", "est_*: the cost model per op (max over the op's PEs) and per transfer. last_run.simulated_cycles: "
                 "GEMM/conv ops from their first and last PE rows simulated wavelet by wavelet (broadcast down, "
                 "reduction EAST), extrapolated to the other rows, which repeat them with no more data"},
      {"replicas", plan.replicas > 1 ? "one replica simulated; the others are identical copies (throughput x replicas)"
                                     : "none"},
      {"whole_tensor_ops", "ops with no arithmetic across PEs (or marked whole_tensor) are computed once over the tensor"}};
  j["hardware"] = "none reachable: a model of the wafer, not a measurement";
  return j.dump();
}

DeviceEntry wse3_device_entry() {
  return wse_entry(WseGeneration::kWse3, "wse3", "Cerebras WSE-3 (CS-3) wafer: placement + mesh simulator (no hardware)");
}
DeviceEntry wse2_device_entry() {
  return wse_entry(WseGeneration::kWse2, "wse2", "Cerebras WSE-2 (CS-2) wafer: placement + mesh simulator (no hardware)");
}
DeviceEntry wse_alias_device_entry() {
  // An alias, not a device of its own: unlisted (the provider is listed once, through wse3).
  DeviceEntry e = wse_entry(WseGeneration::kWse3, "wse", "the newest Cerebras wafer (= wse3)");
  e.listed = false;
  return e;
}

}  // namespace pyflame_rt
