#include "session/inference_session.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <set>

#include "compiler/compile_cache.h"
#include "compiler/memory_plan.h"
#include "compiler/pipeline.h"
#include "devices/device_registry.h"
#include "graph/model_loader.h"
#include "graph/pfm_format.h"

namespace pyflame_rt {

InferenceSession::~InferenceSession() = default;

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create(
    const std::string& model_path, const SessionOptions& options,
    const std::vector<std::string>& providers) {
  RETURN_IF_ERROR(options.validate());
  ASSIGN_OR_RETURN(Graph graph, load_model_file(model_path));
  return create_from_graph(std::move(graph), options, providers);
}

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create_from_bytes(
    const std::string& model_bytes, const SessionOptions& options,
    const std::vector<std::string>& providers) {
  RETURN_IF_ERROR(options.validate());
  ASSIGN_OR_RETURN(Graph graph, load_model_bytes(model_bytes));
  return create_from_graph(std::move(graph), options, providers);
}

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create_from_graph(
    Graph graph, const SessionOptions& options, const std::vector<std::string>& providers) {
  RETURN_IF_ERROR(options.validate());
  std::unique_ptr<InferenceSession> session(new InferenceSession());
  RETURN_IF_ERROR(session->initialize(std::move(graph), options, providers));
  return session;
}

Status InferenceSession::optimize_or_load_cached(Graph graph, const SessionOptions& options) {
  if (options.compile_cache_dir.empty()) {
    ASSIGN_OR_RETURN(graph_, optimize_graph(std::move(graph), options.optimization_level, options.disabled_passes));
    return Status::OK();
  }
  CompileCache cache(options.compile_cache_dir);
  std::string key = cache.key(graph, options.optimization_level, options.disabled_passes);
  if (!key.empty()) {
    Expected<Graph> hit = cache.load(key);
    if (hit.ok()) {
      graph_ = std::move(hit).value();
      compiled_from_cache_ = true;
      return Status::OK();
    }
    if (hit.status().code() != StatusCode::kNotFound) {
      warnings_.push_back("compile cache: ignored an entry that does not load (" + hit.status().message() +
                          "); optimised again");
    }
  }
  ASSIGN_OR_RETURN(graph_, optimize_graph(std::move(graph), options.optimization_level, options.disabled_passes));
  // A cache that cannot be written costs a later session its shortcut, not this one its model.
  if (!key.empty()) {
    if (Status st = cache.store(key, graph_); !st.ok()) warnings_.push_back("compile cache: " + st.message());
  }
  return Status::OK();
}

namespace {

// The registry name behind a SessionOptions.device value ("wse" = the newest wafer).
std::string device_for_option(const std::string& device) { return device == "wse" ? "wse3" : device; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

Expected<std::vector<std::shared_ptr<Device>>> InferenceSession::create_devices(
    const SessionOptions& options, const std::vector<std::string>& providers) {
  const DeviceRegistry& registry = DeviceRegistry::global();
  std::vector<std::string> wanted = providers;
  if (wanted.empty()) {
    if (options.device != "cpu") wanted.push_back(device_for_option(options.device));
    wanted.push_back(kCpuProvider);
  }
  // ONNX Runtime always keeps the CPU as the last resort for what nothing else takes.
  bool has_cpu = false;
  for (const auto& p : wanted) {
    const DeviceEntry* e = registry.find(p);
    has_cpu |= e && e->name == "cpu";
  }
  if (!has_cpu) wanted.push_back(kCpuProvider);

  DeviceConfig base;
  base.num_threads = options.num_threads;
  base.parallel_branches = options.execution_mode == "parallel";
  base.memory_reuse = options.enable_memory_reuse;
  // "custom" has no allocator API yet: it behaves as "default" (see session_options.h).
  base.memory_arena = options.memory_pool == "arena";
  base.artifacts_dir = options.artifacts_dir;
  if (base.artifacts_dir.empty() && !options.compile_cache_dir.empty()) {
    base.artifacts_dir = options.compile_cache_dir + "/artifacts";
  }

  std::vector<std::shared_ptr<Device>> devices;
  for (const auto& name : wanted) {
    const DeviceEntry* entry = registry.find(name);
    // The Cerebras provider with SessionOptions.device naming a generation takes that one.
    if (entry && entry->provider == kCerebrasProvider && options.device != "cpu") {
      if (const DeviceEntry* gen = registry.find(device_for_option(options.device))) entry = gen;
    }
    if (!entry || !entry->listed) {
      warnings_.push_back("execution provider '" + name + "' is not available in this build and was skipped "
                          "(available: " + join(registry.available_providers()) + ")");
      continue;
    }
    bool duplicate = false;
    for (const auto& d : devices) duplicate |= d->name() == entry->name;
    if (duplicate) continue;
    DeviceConfig config = base;
    auto po = options.provider_options.find(entry->provider);
    if (po != options.provider_options.end()) config.options = po->second;
    Expected<std::unique_ptr<Device>> device = entry->create(config);
    if (!device.ok()) return device.status().with_context("execution provider '" + entry->provider + "': ");
    devices.push_back(std::move(device).value());
    if (std::find(providers_.begin(), providers_.end(), entry->provider) == providers_.end()) {
      providers_.push_back(entry->provider);
    }
  }
  for (const auto& [provider, opts] : options.provider_options) {
    if (std::find(providers_.begin(), providers_.end(), provider) == providers_.end()) {
      warnings_.push_back("provider_options for '" + provider + "' were ignored: that provider is not in use");
    }
  }
  return devices;
}

Status InferenceSession::initialize(Graph graph, const SessionOptions& options,
                                    const std::vector<std::string>& providers) {
  options_ = options;
  ASSIGN_OR_RETURN(std::vector<std::shared_ptr<Device>> devices, create_devices(options, providers));

  // Initializers that old models (IR < 4) also list as inputs stay feedable: they become real
  // graph inputs whose default is the stored tensor.
  for (const auto& name : graph.overridable_initializers) {
    auto it = graph.initializers.find(name);
    if (it == graph.initializers.end()) continue;
    overridable_defaults_[name] = it->second;
    graph.inputs.push_back({name, it->second.dtype(), Shape::from_dims(it->second.dims())});
    graph.initializers.erase(it);
  }

  RETURN_IF_ERROR(optimize_or_load_cached(std::move(graph), options));
  if (options.memory_limit_mb > 0) {
    // A lower bound (shapes known only at run time are not counted), checked now so a model
    // that cannot fit fails at creation, not in the middle of serving.
    MemoryPlan plan = plan_memory(graph_);
    int64_t need = plan.weight_bytes + plan.arena_bytes, limit = options.memory_limit_mb << 20;
    if (need > limit) {
      return make_status(StatusCode::kResourceExhausted, "the model needs at least ", (need + (1 << 20) - 1) >> 20,
                         " MB (weights ", plan.weight_bytes >> 20, " MB + activations ", plan.arena_bytes >> 20,
                         " MB at their peak), SessionOptions.memory_limit_mb is ", options.memory_limit_mb);
    }
  }
  if (!options.optimized_model_path.empty()) {
    RETURN_IF_ERROR(save_pfm(graph_, options.optimized_model_path)
                        .with_context("SessionOptions.optimized_model_path: "));
  }
  for (const auto& v : graph_.inputs) {
    if (!overridable_defaults_.count(v.name)) inputs_.push_back({v.name, v.dtype, v.shape});
  }
  for (const auto& v : graph_.outputs) outputs_.push_back({v.name, v.dtype, v.shape});

  ASSIGN_OR_RETURN(compiled_, CompiledModel::compile(graph_, devices, options.optimization_level,
                                                     options.disabled_passes));
  // A wafer asked for but left without a node is worth a word: everything fell back.
  if (devices.size() > 1) {
    std::vector<std::string> used = compiled_->devices_used();
    if (std::find(used.begin(), used.end(), devices.front()->name()) == used.end()) {
      warnings_.push_back("no node was placed on " + devices.front()->name() + " (see get_fallback_nodes())");
    }
  }
  return Status::OK();
}

Status check_tensor_against(DType dtype, const Shape& shape, const Tensor& t, const std::string& what, int skip_axis) {
  if (dtype != DType::kUndefined && t.dtype() != dtype) {
    return invalid_argument(what, ": expected dtype ", dtype_onnx_name(dtype), ", got ", dtype_onnx_name(t.dtype()));
  }
  if (!shape.rank_known) return Status::OK();
  if (t.rank() != shape.rank()) {
    return invalid_argument(what, ": expected rank ", shape.rank(), " (shape ", shape.to_string(), "), got rank ",
                            t.rank(), " (shape ", dims_to_string(t.dims()), ")");
  }
  for (size_t i = 0; i < t.rank(); ++i) {
    const Dim& d = shape.dims[i];
    if (static_cast<int>(i) != skip_axis && d.known() && d.value != t.dim(i)) {
      return invalid_argument(what, ": dimension ", i, " must be ", d.value, " (model shape ", shape.to_string(),
                              "), got ", t.dim(i), " (shape ", dims_to_string(t.dims()), ")");
    }
  }
  return Status::OK();
}

Status InferenceSession::prepare(const std::vector<std::string>& output_names,
                                 const std::map<std::string, Tensor>& feeds, std::vector<size_t>* wanted,
                                 std::vector<Value>* inputs) const {
  // Resolve requested outputs first so a typo fails before any work.
  if (output_names.empty()) {
    for (size_t i = 0; i < outputs_.size(); ++i) wanted->push_back(i);
  } else {
    for (const auto& name : output_names) {
      size_t i = 0;
      while (i < outputs_.size() && outputs_[i].name != name) ++i;
      if (i == outputs_.size()) {
        std::string known;
        for (const auto& o : outputs_) known += (known.empty() ? "" : ", ") + ("'" + o.name + "'");
        return make_status(StatusCode::kNotFound, "unknown output name '", name, "': the model's outputs are ", known);
      }
      wanted->push_back(i);
    }
  }
  for (const auto& kv : feeds) {
    if (!graph_.find_input(kv.first)) {
      std::string known;
      for (const auto& in : inputs_) known += (known.empty() ? "" : ", ") + ("'" + in.name + "'");
      return invalid_argument("unknown input name '", kv.first, "': the model's inputs are ", known);
    }
  }
  inputs->reserve(graph_.inputs.size());
  for (const auto& v : graph_.inputs) {
    auto it = feeds.find(v.name);
    if (it == feeds.end()) {
      auto def = overridable_defaults_.find(v.name);
      if (def != overridable_defaults_.end()) { inputs->emplace_back(def->second); continue; }
      return invalid_argument("missing input '", v.name, "': expected ", dtype_onnx_name(v.dtype), " with shape ",
                              v.shape.to_string());
    }
    RETURN_IF_ERROR(check_tensor_against(v.dtype, v.shape, it->second, "input '" + v.name + "'"));
    inputs->emplace_back(it->second);
  }
  return Status::OK();
}

Status InferenceSession::validate_feeds(const std::map<std::string, Tensor>& feeds) const {
  std::vector<size_t> wanted;
  std::vector<Value> inputs;
  return prepare({}, feeds, &wanted, &inputs);
}

Expected<std::vector<Tensor>> InferenceSession::select_outputs(std::vector<Value> results,
                                                               const std::vector<size_t>& wanted) const {
  std::vector<Tensor> out;
  out.reserve(wanted.size());
  for (size_t i : wanted) {
    Value& v = results[i];
    if (!v.is_tensor()) {
      return not_implemented("output '", outputs_[i].name, "' is a ", v.is_sequence() ? "sequence" : "empty optional",
                             "; only tensor outputs can be returned");
    }
    out.push_back(v.tensor);
  }
  return out;
}

Expected<std::vector<Tensor>> InferenceSession::run(const std::vector<std::string>& output_names,
                                                    const std::map<std::string, Tensor>& feeds) const {
  return run(output_names, feeds, RunContext{});
}

Expected<std::vector<Tensor>> InferenceSession::run(const std::vector<std::string>& output_names,
                                                    const std::map<std::string, Tensor>& feeds,
                                                    const RunContext& ctx) const {
  std::vector<size_t> wanted;
  std::vector<Value> inputs;
  RETURN_IF_ERROR(prepare(output_names, feeds, &wanted, &inputs));
  if (options_.enable_profiling) {
    TracedRun traced;
    traced.start_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - created_).count();
    ASSIGN_OR_RETURN(std::vector<Value> results, compiled_->run_profiled(std::move(inputs), &traced.nodes));
    std::lock_guard<std::mutex> lock(trace_mu_);
    trace_.push_back(std::move(traced));
    return select_outputs(std::move(results), wanted);
  }
  ASSIGN_OR_RETURN(std::vector<Value> results, compiled_->run(std::move(inputs), ctx));
  return select_outputs(std::move(results), wanted);
}

namespace {
std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) { out += ' '; continue; }
    out += c;
  }
  return out;
}
}  // namespace

Expected<std::string> InferenceSession::end_profiling() {
  if (!options_.enable_profiling) return std::string();  // like ONNX Runtime: nothing was recorded
  std::vector<TracedRun> runs;
  {
    std::lock_guard<std::mutex> lock(trace_mu_);
    runs.swap(trace_);
  }
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", std::localtime(&now));
  std::string path = options_.profile_file_prefix + "_" + stamp + ".json";
  std::ofstream out(path);
  if (!out) return make_status(StatusCode::kNoSuchFile, "cannot write the profile '", path, "'");
  out << "{\"traceEvents\": [";
  bool first = true;
  for (size_t r = 0; r < runs.size(); ++r) {
    for (const auto& n : runs[r].nodes) {
      out << (first ? "\n" : ",\n") << "{\"name\": \"" << json_escape(n.name) << "\", \"cat\": \"Node\", \"ph\": \"X\", "
          << "\"ts\": " << runs[r].start_us + n.start_us << ", \"dur\": " << n.duration_us
          << ", \"pid\": 1, \"tid\": 1, \"args\": {\"op_type\": \"" << json_escape(n.op_type) << "\", \"run\": " << r << "}}";
      first = false;
    }
  }
  out << "\n]}\n";
  if (!out) return make_status(StatusCode::kFail, "writing the profile '", path, "' failed");
  return path;
}

Expected<InferenceSession::ProfiledRun> InferenceSession::run_with_profiling(
    const std::vector<std::string>& output_names, const std::map<std::string, Tensor>& feeds) const {
  std::vector<size_t> wanted;
  std::vector<Value> inputs;
  RETURN_IF_ERROR(prepare(output_names, feeds, &wanted, &inputs));
  ProfiledRun run;
  ASSIGN_OR_RETURN(std::vector<Value> results, compiled_->run_profiled(std::move(inputs), &run.nodes));
  ASSIGN_OR_RETURN(run.outputs, select_outputs(std::move(results), wanted));
  return run;
}

}  // namespace pyflame_rt
