#include "session/inference_session.h"

#include <algorithm>
#include <map>
#include <atomic>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#include "session/profile_trace.h"
#include "compiler/compile_cache.h"
#include "compiler/memory_plan.h"
#include "compiler/pipeline.h"
#include "devices/device_registry.h"
#include "devices/run_interrupt.h"
#include "graph/model_loader.h"
#include "graph/onnx_export.h"
#include "graph/pfm_format.h"
#include "session/bound_outputs.h"
#include "session/mapped_file.h"
#include "session/plan_cache.h"
#include "session/plan_weights.h"

namespace pyflame_rt {

InferenceSession::~InferenceSession() = default;

namespace {
using Clock = std::chrono::steady_clock;
double micros_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }
double ms_since(Clock::time_point t) { return micros_since(t) / 1e3; }

// A plan does not keep the optimised graph whole: options that need it bypass the cache.
bool plan_cache_applies(const SessionOptions& o) {
  return !o.compile_cache_dir.empty() && o.memory_limit_mb == 0 && o.optimized_model_path.empty();
}

// SessionOptions.max_model_size_mb, checked on the file's size or the bytes' length before
// anything parses them (a hostile 10 GB file is refused without being read).
Status check_model_size(uint64_t bytes, const SessionOptions& o, const std::string& what) {
  if (o.max_model_size_mb <= 0) return Status::OK();
  const uint64_t limit = static_cast<uint64_t>(o.max_model_size_mb) << 20;
  if (bytes <= limit) return Status::OK();
  count_limit(nullptr, &LimitCounters::models_too_large);
  return make_status(StatusCode::kResourceExhausted, what, " is ", bytes,
                     " bytes, more than SessionOptions.max_model_size_mb allows (", o.max_model_size_mb, " MB = ",
                     limit, " bytes); raise the option to load it");
}

// A bad cache entry is worth one line per process, not one per session.
void log_bad_entry_once(const Status& st, const SessionOptions& o) {
  static std::mutex mu;
  static std::set<std::string> logged;
  std::lock_guard<std::mutex> lock(mu);
  if (!logged.insert(st.message()).second) return;
  log_at(LogSeverity::kWarning, LogScope{o.log_id, o.log_severity_level, o.log_verbosity_level},
         "plan cache: ", st.message(), "; compiling again");
}
}  // namespace

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create(
    const std::string& model_path, const SessionOptions& options,
    const std::vector<std::string>& providers) {
  RETURN_IF_ERROR(options.validate());
  std::error_code size_error;  // a missing file: the loader's own error names it
  const uintmax_t file_size = std::filesystem::file_size(model_path, size_error);
  if (!size_error) RETURN_IF_ERROR(check_model_size(file_size, options, "model file '" + model_path + "'"));
  auto start = Clock::now();
  if (is_plan_file(model_path)) {
    // An ahead-of-time plan (`pyflame-rt compile`): any key, this CPU.
    ASSIGN_OR_RETURN(PlanContents plan, read_plan_file(model_path, ""));
    ModelMetadata metadata = plan.metadata;
    return create_loaded(Graph(), std::move(metadata), start, "model_loading_uri", options, providers, &plan, "",
                         {{"plan_load", ms_since(start)}});
  }
  if (plan_cache_applies(options)) {
    ASSIGN_OR_RETURN(std::string content, PlanCache(options.compile_cache_dir).file_content_hash(model_path));
    return create_via_plan(content, "", model_path, options, providers, start);
  }
  ModelMetadata metadata;
  ASSIGN_OR_RETURN(Graph graph, load_model_file(model_path, &metadata));
  return create_loaded(std::move(graph), std::move(metadata), start, "model_loading_uri", options, providers);
}

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create_from_bytes(
    const std::string& model_bytes, const SessionOptions& options,
    const std::vector<std::string>& providers) {
  RETURN_IF_ERROR(options.validate());
  RETURN_IF_ERROR(check_model_size(model_bytes.size(), options, "the model bytes"));
  if (plan_cache_applies(options)) {
    auto start = Clock::now();
    return create_via_plan(PlanCache::content_hash(model_bytes), model_bytes, "", options, providers, start);
  }
  auto start = Clock::now();
  ModelMetadata metadata;
  ASSIGN_OR_RETURN(Graph graph, load_model_bytes(model_bytes, "", &metadata));
  return create_loaded(std::move(graph), std::move(metadata), start, "model_loading_array", options, providers);
}

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create_from_graph(
    Graph graph, const SessionOptions& options, const std::vector<std::string>& providers) {
  RETURN_IF_ERROR(options.validate());
  ModelMetadata metadata;
  metadata.graph_name = graph.name;
  return create_loaded(std::move(graph), std::move(metadata), Clock::now(), "model_loading_graph", options, providers);
}

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create_via_plan(
    const std::string& content_hash, std::string_view model_bytes, const std::string& model_path,
    const SessionOptions& options, const std::vector<std::string>& providers, Clock::time_point start) {
  std::map<std::string, double> phases;
  const char* event = model_path.empty() ? "model_loading_array" : "model_loading_uri";
  std::string key = PlanCache::key_for(content_hash, options, providers);
  phases["plan_key"] = ms_since(start);
  PlanCache cache(options.compile_cache_dir);
  auto t = Clock::now();
  Expected<PlanContents> hit = cache.load(key);
  if (hit.ok()) {
    phases["plan_load"] = ms_since(t);
    ModelMetadata metadata = hit.value().metadata;
    Expected<std::unique_ptr<InferenceSession>> made =
        create_loaded(Graph(), std::move(metadata), start, event, options, providers, &hit.value(), "", phases);
    // A plan that does not fit this machine (packed weights another oneDNN or thread count
    // would lay out differently, for weights the plan left out) is compiled again, like a
    // damaged entry; an error of the options or the model would be the same again.
    if (made.ok() || made.status().code() != StatusCode::kInvalidProtobuf) return made;
    hit = made.status();
    phases.erase("plan_load");
  }
  if (hit.status().code() != StatusCode::kNotFound) log_bad_entry_once(hit.status(), options);
  t = Clock::now();
  ModelMetadata metadata;
  Expected<Graph> graph = model_path.empty() ? load_model_bytes(std::string(model_bytes), "", &metadata)
                                             : load_model_file(model_path, &metadata);
  if (!graph.ok()) return graph.status();
  phases["import"] = ms_since(t);
  return create_loaded(std::move(graph).value(), std::move(metadata), start, event, options, providers, nullptr, key,
                       std::move(phases));
}

Expected<std::unique_ptr<InferenceSession>> InferenceSession::create_loaded(
    Graph graph, ModelMetadata metadata, Clock::time_point load_start, const char* load_event,
    const SessionOptions& options, const std::vector<std::string>& providers, PlanContents* plan,
    const std::string& plan_key, std::map<std::string, double> phases) {
  static std::atomic<int> sessions{0};
  std::unique_ptr<InferenceSession> session(new InferenceSession());
  session->created_ = load_start;
  session->profiling_start_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch()).count() -
                                 static_cast<int64_t>(micros_since(load_start) * 1e3);
  session->load_us_ = micros_since(load_start);
  session->load_event_ = load_event;
  session->metadata_ = std::move(metadata);
  session->log_scope_ = {options.log_id.empty() ? "session-" + std::to_string(++sessions) : options.log_id,
                         options.log_severity_level, options.log_verbosity_level};
  session->plan_key_ = plan_key;
  session->startup_phases_ = std::move(phases);
  auto init_start = Clock::now();
  Status st = plan ? session->initialize_from_plan(std::move(*plan), options, providers)
                   : session->initialize(std::move(graph), options, providers);
  if (!st.ok()) {
    log_at(LogSeverity::kError, session->log_scope_, "session creation failed: ", st.to_string());
    return st;
  }
  session->init_us_ = micros_since(init_start);
  if (plan) {
    log_at(LogSeverity::kInfo, session->log_scope_, "session ready from a plan, ", session->init_us_ / 1e3, " ms");
  } else {
    log_at(LogSeverity::kInfo, session->log_scope_, "session ready: ", session->graph_.nodes.size(), " nodes after ",
           opt_level_name(options.optimization_level), " optimisation, ", session->init_us_ / 1e3, " ms");
  }
  return session;
}

void InferenceSession::warn(const std::string& message) {
  warnings_.push_back(message);
  log_message(LogSeverity::kWarning, log_scope_, message);
}

Status InferenceSession::apply_free_dimension_overrides(Graph& graph) const {
  const SessionOptions& o = options_;
  for (const auto& [name, text] : o.input_shapes) {
    ValueInfo* input = nullptr;
    for (auto& v : graph.inputs) if (v.name == name) input = &v;
    if (!input) return invalid_argument("SessionOptions.input_shapes: the model has no input '", name, "'");
    Dims dims;
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) {
      char* end = nullptr;
      long long v = std::strtoll(part.c_str(), &end, 10);
      if (part.empty() || *end != '\0' || v < -1) {
        return invalid_argument("SessionOptions.input_shapes['", name, "']: expected sizes like '1,3,224,224' ",
                                "(-1 keeps the model's dim), got '", text, "'");
      }
      dims.push_back(v);
    }
    const Shape& shape = input->shape;
    bool fits = !shape.rank_known || shape.rank() == dims.size();
    for (size_t i = 0; fits && shape.rank_known && i < dims.size(); ++i) {
      fits = dims[i] == -1 || !shape.dims[i].known() || shape.dims[i].value == dims[i];
    }
    if (!fits) {
      return invalid_argument("SessionOptions.input_shapes['", name, "']: the model's input has shape ",
                              shape.to_string(), ", given ", dims_to_string(dims));
    }
    for (size_t i = 0; i < dims.size(); ++i) {
      if (input->shape.rank_known && dims[i] != -1) input->shape.dims[i] = Dim(dims[i]);
    }
    if (!input->shape.rank_known) {
      Shape fixed = Shape::from_dims(dims);
      for (size_t i = 0; i < dims.size(); ++i) if (dims[i] == -1) fixed.dims[i] = Dim();
      input->shape = fixed;
    }
  }
  if (o.free_dimension_overrides.empty() && o.free_dimension_overrides_by_denotation.empty()) return Status::OK();
  for (auto& input : graph.inputs) {
    for (size_t axis = 0; axis < input.shape.dims.size(); ++axis) {
      Dim& d = input.shape.dims[axis];
      if (d.known()) continue;
      auto by_name = o.free_dimension_overrides.find(d.symbol);
      if (!d.symbol.empty() && by_name != o.free_dimension_overrides.end()) {
        d = Dim(by_name->second);
        continue;
      }
      for (const auto& dd : metadata_.dim_denotations) {
        if (dd.input != input.name || dd.axis != axis) continue;
        auto by_denotation = o.free_dimension_overrides_by_denotation.find(dd.denotation);
        if (by_denotation != o.free_dimension_overrides_by_denotation.end()) d = Dim(by_denotation->second);
      }
    }
  }
  return Status::OK();
}

namespace {
// No run config entry changes anything here: each key is warned about once per process (a
// warning per run would bury every other line).
void warn_ignored_run_entries(const RunOptions& run_options, const LogScope& scope) {
  if (run_options.config_entries.empty()) return;
  static std::mutex mu;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [key, value] : run_options.config_entries) {
    if (warned.insert(key).second) {
      log_at(LogSeverity::kWarning, scope, "run config entry '", key, "' (= '", value, "') is ignored here");
    }
  }
}
}  // namespace

void InferenceSession::warn_ignored_options(const SessionOptions& o) {
  if (o.inter_op_num_threads != 0) {
    warn("SessionOptions.inter_op_num_threads=" + std::to_string(o.inter_op_num_threads) +
         " is ignored: execution_mode 'parallel' runs independent nodes on two workers");
  }
  if (o.use_deterministic_compute) {
    warn("SessionOptions.use_deterministic_compute is ignored: there is no faster non-deterministic mode to turn off");
  }
  if (o.memory_pool == "custom") {
    warn("SessionOptions.memory_pool 'custom' behaves as 'default': there is no custom allocator API yet");
  }
  for (const auto& [key, value] : o.config_entries) {
    if (key == "session.save_model_format" || key == "session.set_denormal_as_zero") continue;
    warn("session config entry '" + key + "' (= '" + value + "') is not understood here and is ignored");
  }
}

// Constant folding at creation stays within what one run of this session may hold and take.
FoldLimits fold_limits(const SessionOptions& o) {
  FoldLimits f;
  f.memory_bytes = o.memory_limit_mb > (std::numeric_limits<int64_t>::max() >> 20) ? 0 : o.memory_limit_mb << 20;
  f.timeout_ms = o.run_timeout_ms;
  return f;
}

Status InferenceSession::optimize_or_load_cached(Graph graph, const SessionOptions& options) {
  // With a plan key the plan cache (session/plan_cache.h) stands in for the graph cache.
  if (options.compile_cache_dir.empty() || !plan_key_.empty()) {
    ASSIGN_OR_RETURN(graph_, optimize_graph(std::move(graph), options.optimization_level, options.disabled_passes,
                                            fold_limits(options)));
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
      warn("compile cache: ignored an entry that does not load (" + hit.status().message() + "); optimised again");
    }
  }
  ASSIGN_OR_RETURN(graph_, optimize_graph(std::move(graph), options.optimization_level, options.disabled_passes,
                                          fold_limits(options)));
  // A cache that cannot be written costs a later session its shortcut, not this one its model.
  if (!key.empty()) {
    if (Status st = cache.store(key, graph_); !st.ok()) warn("compile cache: " + st.message());
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
  base.memory_arena = options.memory_pool == "arena" && options.enable_cpu_mem_arena;
  base.flush_denormals = options.flush_denormals();
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
      warn("execution provider '" + name + "' is not available in this build and was skipped (available: " +
           join(registry.available_providers()) + ")");
      continue;
    }
    bool duplicate = false;
    for (const auto& d : devices) duplicate |= d->name() == entry->name;
    if (duplicate) continue;
    DeviceConfig config = base;
    auto po = options.provider_options.find(entry->provider);
    if (po != options.provider_options.end()) config.options = po->second;
    std::vector<std::string> device_warnings;
    config.warnings = &device_warnings;
    Expected<std::unique_ptr<Device>> device = entry->create(config);
    for (const auto& w : device_warnings) warn(w);
    if (!device.ok()) return device.status().with_context("execution provider '" + entry->provider + "': ");
    devices.push_back(std::move(device).value());
    if (std::find(providers_.begin(), providers_.end(), entry->provider) == providers_.end()) {
      providers_.push_back(entry->provider);
    }
  }
  for (const auto& [provider, opts] : options.provider_options) {
    if (std::find(providers_.begin(), providers_.end(), provider) == providers_.end()) {
      warn("provider_options for '" + provider + "' were ignored: that provider is not in use");
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
    overridable_.push_back({name, it->second.dtype(), Shape::from_dims(it->second.dims())});
    graph.inputs.push_back({name, it->second.dtype(), Shape::from_dims(it->second.dims())});
    graph.initializers.erase(it);
  }

  RETURN_IF_ERROR(apply_free_dimension_overrides(graph));
  warn_ignored_options(options);
  auto passes_start = Clock::now();
  RETURN_IF_ERROR(optimize_or_load_cached(std::move(graph), options));
  startup_phases_["passes"] = ms_since(passes_start);
  if (options.memory_limit_mb > 0) {
    // A lower bound (shapes known only at run time are not counted), checked now so a model
    // that cannot fit fails at creation, not in the middle of serving.
    MemoryPlan plan = plan_memory(graph_);
    const int64_t need = plan.needed_bytes();  // saturating: shapes come from the model
    const int64_t limit = options.memory_limit_mb > (std::numeric_limits<int64_t>::max() >> 20)
                              ? std::numeric_limits<int64_t>::max()
                              : options.memory_limit_mb << 20;
    if (need > limit) {
      return make_status(StatusCode::kResourceExhausted, "the model needs at least ", (need >> 20) + ((need & ((1 << 20) - 1)) != 0),
                         " MB (weights ", plan.weight_bytes >> 20, " MB + activations ", plan.arena_bytes >> 20,
                         " MB at their peak), SessionOptions.memory_limit_mb is ", options.memory_limit_mb);
    }
  }
  if (!options.optimized_model_path.empty()) {
    const std::string& path = options.optimized_model_path;
    auto format = options.config_entries.find("session.save_model_format");
    bool as_onnx = format != options.config_entries.end()
                       ? format->second == "ONNX"
                       : path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
    RETURN_IF_ERROR((as_onnx ? save_onnx(graph_, path, metadata_) : save_pfm(graph_, path))
                        .with_context("SessionOptions.optimized_model_path: "));
  }
  for (const auto& v : graph_.inputs) {
    if (!overridable_defaults_.count(v.name)) inputs_.push_back({v.name, v.dtype, v.shape});
  }
  for (const auto& v : graph_.outputs) outputs_.push_back({v.name, v.dtype, v.shape});

  auto compile_start = Clock::now();
  ASSIGN_OR_RETURN(compiled_, CompiledModel::compile(graph_, devices, options.optimization_level,
                                                     options.disabled_passes));
  startup_phases_["compile"] = ms_since(compile_start);
  if (!plan_key_.empty()) store_plan();
  // A wafer asked for but left without a node is worth a word: everything fell back.
  if (devices.size() > 1) {
    std::vector<std::string> used = compiled_->devices_used();
    if (std::find(used.begin(), used.end(), devices.front()->name()) == used.end()) {
      warn("no node was placed on " + devices.front()->name() + " (see get_fallback_nodes())");
    }
  }
  // Logged like ONNX Runtime's "some nodes were not assigned to the preferred provider" (not
  // a Python warning: most are cheap shape ops; fallback_nodes() lists them).
  // At most kListed nodes by name; a detection model has a thousand, one warning line then
  // counts the rest by op type (an item reads "OpType 'node': reason").
  constexpr size_t kListed = 10;
  auto log_list = [&](const std::vector<std::string>& items, const std::string& what) {
    if (items.empty()) return;
    std::string list;
    std::map<std::string, int> rest;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i < kListed) {
        list += (list.empty() ? "" : ", ") + items[i];
      } else {
        ++rest[items[i].substr(0, items[i].find(" '"))];
      }
    }
    if (!rest.empty()) {
      std::string counts;
      for (const auto& [op, n] : rest) counts += (counts.empty() ? "" : ", ") + op + " x" + std::to_string(n);
      list += "; and " + std::to_string(items.size() - kListed) + " more: " + counts + " (get_fallback_nodes() lists all)";
    }
    log_at(LogSeverity::kWarning, log_scope_, items.size(), " node(s) ", what, ": ", list);
  };
  log_list(compiled_->declined(), "were not assigned to the preferred provider");
  for (const auto& part : compiled_->partitions()) {
    log_list(part.executable->fallback_nodes(), "run on the slower reference kernels of " + part.device);
  }
  return Status::OK();
}

Status InferenceSession::initialize_from_plan(PlanContents plan, const SessionOptions& options,
                                             const std::vector<std::string>& providers) {
  options_ = options;
  ASSIGN_OR_RETURN(std::vector<std::shared_ptr<Device>> devices, create_devices(options, providers));
  warn_ignored_options(options);
  if (options.memory_limit_mb > 0) warn("SessionOptions.memory_limit_mb is not checked for a precompiled plan");
  if (!options.optimized_model_path.empty()) {
    warn("SessionOptions.optimized_model_path is ignored: a precompiled plan has no optimised graph to save");
  }
  auto t = Clock::now();
  DeviceConfig config;
  config.num_threads = options.num_threads;
  config.flush_denormals = options.flush_denormals();
  ASSIGN_OR_RETURN(compiled_, CompiledModel::deserialize(plan.compiled, devices, config, std::move(plan.weights),
                                                         std::move(plan.packed)));
  startup_phases_["compile"] = ms_since(t);
  compiled_from_cache_ = true;
  graph_.name = metadata_.graph_name;
  graph_.inputs = compiled_->inputs();
  graph_.outputs = compiled_->outputs();
  for (const auto& v : graph_.inputs) inputs_.push_back({v.name, v.dtype, v.shape});
  for (const auto& v : graph_.outputs) outputs_.push_back({v.name, v.dtype, v.shape});
  return Status::OK();
}

Status InferenceSession::save_plan(const std::string& path) const {
  if (!overridable_defaults_.empty()) {
    return not_implemented("a plan cannot hold feedable initializers (an IR < 4 model lists them as inputs)");
  }
  PlanContents plan;
  plan.metadata = metadata_;
  ASSIGN_OR_RETURN(plan.compiled, compiled_->serialize(&plan.weights));
  pack_for_plan(&plan, false);
  return write_plan_file(path, "", plan).with_context("saving the plan: ");
}

void InferenceSession::pack_for_plan(PlanContents* plan, bool leave_out) const {
  // A plan whose input shapes are all static keeps its kernels' packed weights: a session
  // made from it maps them rather than packing on its first run. Best effort: a plan without
  // them is only slower to start.
  Expected<bool> ran = compiled_->warm_up();
  Status st = ran.ok() && ran.value() ? compiled_->export_packed(&plan->packed) : ran.status();
  if (!st.ok()) {
    plan->packed.clear();
    log_at(LogSeverity::kInfo, log_scope_, "the plan keeps no packed weights: ", st.message());
    return;
  }
  // Weights only packed kernels read are stored once, packed (session/plan_weights.h).
  // A session made from a cache entry has only stand-ins for those: a plan file saved from it
  // leaves them out too.
  leave_out_packed_weights(*compiled_, plan, /*stand_ins_only=*/!leave_out);
}

void InferenceSession::store_plan() {
  // Feedable initializers (IR < 4) are the session's, not the compiled model's: such models
  // are not stored, and compile each time.
  if (!overridable_defaults_.empty()) return;
  auto t = Clock::now();
  PlanContents plan;
  plan.metadata = metadata_;
  Expected<std::string> bytes = compiled_->serialize(&plan.weights);
  Status st = bytes.ok() ? Status::OK() : bytes.status();
  if (st.ok()) {
    plan.compiled = std::move(bytes).value();
    pack_for_plan(&plan, true);
    st = PlanCache(options_.compile_cache_dir).store(plan_key_, plan);
  }
  // A cache that cannot be written costs a later session its shortcut, not this one its model.
  if (!st.ok()) warn("plan cache: " + st.message());
  startup_phases_["plan_store"] = ms_since(t);
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
        return invalid_argument("unknown output name '", name, "': the model's outputs are ", known);
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
      const char* kind = v.is_sequence() ? "sequence" : v.is_map() ? "map" : "empty optional";
      return not_implemented("output '", outputs_[i].name, "' is a ", kind, "; only tensor outputs can be returned");
    }
    out.push_back(v.tensor);
  }
  return out;
}

Expected<std::vector<Tensor>> InferenceSession::run(const std::vector<std::string>& output_names,
                                                    const std::map<std::string, Tensor>& feeds) const {
  return run(output_names, feeds, RunOptions());
}

Expected<std::vector<Tensor>> InferenceSession::run(const std::vector<std::string>& output_names,
                                                    const std::map<std::string, Tensor>& feeds,
                                                    const RunOptions& run_options) const {
  ASSIGN_OR_RETURN(std::vector<Value> values, run_values(output_names, feeds, run_options));
  std::vector<size_t> all(values.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return select_outputs(std::move(values), all);
}

Expected<std::vector<Value>> InferenceSession::run_values(const std::vector<std::string>& output_names,
                                                          const std::map<std::string, Tensor>& feeds,
                                                          const RunOptions& run_options) const {
  return run_values(output_names, feeds, run_options, {}, nullptr);
}

Expected<std::vector<Value>> InferenceSession::run_values(const std::vector<std::string>& output_names,
                                                          const std::map<std::string, Tensor>& feeds,
                                                          const RunOptions& run_options,
                                                          const std::map<std::string, Tensor>& preallocated,
                                                          std::vector<bool>* in_place) const {
  // The run's lines carry the session's id and the run's; the run's levels, when set, win.
  LogScope scope = log_scope_;
  if (!run_options.log_id.empty()) scope.id += ":" + run_options.log_id;
  if (run_options.log_severity_level >= 0) scope.severity = run_options.log_severity_level;
  scope.verbosity = std::max(scope.verbosity, run_options.log_verbosity_level);
  std::vector<size_t> wanted;
  std::vector<Value> inputs;
  RETURN_IF_ERROR(prepare(output_names, feeds, &wanted, &inputs));
  for (const auto& kv : preallocated) {
    auto w = std::find_if(wanted.begin(), wanted.end(), [&](size_t i) { return outputs_[i].name == kv.first; });
    if (w == wanted.end()) {
      return invalid_argument("output '", kv.first, "' has a bound buffer but is not among the requested outputs");
    }
    RETURN_IF_ERROR(check_bound_output(kv.first, outputs_[*w].dtype, outputs_[*w].shape, kv.second));
  }
  log_at(LogSeverity::kVerbose, scope, "run started: ", feeds.size(), " feeds, ", wanted.size(), " outputs");
  warn_ignored_run_entries(run_options, scope);
  if (run_options.timeout_ms < 0) {
    return invalid_argument("RunOptions.timeout_ms: expected >= 0 (0 = no deadline), got ", run_options.timeout_ms);
  }
  // Between nodes on this thread (RunInterruptScope) and between partitions on the device
  // actors of a multi-device model (the RunContext travels with the frame): terminate, the
  // deadline, and the memory budget every allocation of the run is charged to.
  auto start = Clock::now();
  RunContext ctx;
  ctx.terminate = &run_options.terminate;
  ctx.stop_source = current_run_stop_source();  // a served stage's frame (RunStopScope)
  // The run's own deadline wins; else the session's (SessionOptions.run_timeout_ms).
  const int64_t timeout_ms = run_options.timeout_ms > 0 ? run_options.timeout_ms : options_.run_timeout_ms;
  if (timeout_ms > 0) {
    ctx.timeout_ms = timeout_ms;
    if (run_options.timeout_ms <= 0) ctx.timeout_name = "SessionOptions.run_timeout_ms";
    ctx.deadline = start + std::chrono::milliseconds(timeout_ms);
  }
  if (options_.memory_limit_mb > 0) {
    ctx.memory = std::make_shared<MemoryBudget>(options_.memory_limit_mb << 20, "SessionOptions.memory_limit_mb");
  }
  if (!preallocated.empty()) ctx.preallocated = &preallocated;
  RunInterruptScope interrupt(ctx);
  RunInProgress counted;  // for a server's shutdown report (devices/run_interrupt.h)
  auto execute = [&]() -> Expected<std::vector<Value>> {
    if (!options_.enable_profiling) return compiled_->run(std::move(inputs), ctx);
    TracedRun traced;
    traced.start_us = std::chrono::duration<double, std::micro>(start - created_).count();
    ASSIGN_OR_RETURN(std::vector<Value> values, compiled_->run_profiled(std::move(inputs), &traced.nodes));
    traced.dur_us = micros_since(start);
    std::lock_guard<std::mutex> lock(trace_mu_);
    trace_.push_back(std::move(traced));
    return values;
  };
  Expected<std::vector<Value>> results = execute();
  if (!results.ok()) {
    Status st = results.status();
    if (ctx.memory && ctx.memory->exceeded()) {
      // The node that asked reported a plain allocation failure: name the limit instead.
      st = make_status(StatusCode::kResourceExhausted, ctx.memory->message(), " (", st.message(), ")");
      count_limit(&counters_, &LimitCounters::runs_memory_exceeded);
    } else if (st.code() == StatusCode::kDeadlineExceeded) {
      count_limit(&counters_, &LimitCounters::runs_deadline_exceeded);
    } else if (run_options.terminate.load()) {
      count_limit(&counters_, &LimitCounters::runs_terminated);
    }
    log_at(LogSeverity::kError, scope, "run failed: ", st.to_string());
    return st;
  }
  log_at(LogSeverity::kVerbose, scope, "run finished in ", micros_since(start), " us");
  std::vector<Value> out;
  out.reserve(wanted.size());
  if (in_place) in_place->assign(wanted.size(), false);
  for (size_t k = 0; k < wanted.size(); ++k) {
    Value& v = results.value()[wanted[k]];
    auto bound = preallocated.find(outputs_[wanted[k]].name);
    if (bound != preallocated.end()) {
      ASSIGN_OR_RETURN(bool direct, finish_bound_output(bound->first, v, bound->second));
      if (in_place) (*in_place)[k] = direct;
      v = Value(bound->second);
    }
    out.push_back(std::move(v));
  }
  return out;
}

Status InferenceSession::acquire_stream_slot(const std::string& stream) const {
  const int64_t open = open_streams_.fetch_add(1) + 1;
  if (options_.max_streams > 0 && open > options_.max_streams) {
    open_streams_.fetch_sub(1);
    count_limit(&counters_, &LimitCounters::streams_refused);
    return make_status(StatusCode::kResourceExhausted, "stream '", stream, "': ", open - 1,
                       " streams are open on this session, SessionOptions.max_streams is ", options_.max_streams,
                       "; close one (or let it be collected) first");
  }
  return Status::OK();
}

Expected<std::string> InferenceSession::end_profiling() {
  if (!options_.enable_profiling) return std::string();  // like ONNX Runtime: nothing was recorded
  std::vector<TracedRun> runs;
  {
    std::lock_guard<std::mutex> lock(trace_mu_);
    runs.swap(trace_);
  }
  std::vector<TraceEvent> events;
  events.push_back({"Session", load_event_, 0, load_us_, {}});
  events.push_back({"Session", "session_initialization", load_us_, init_us_, {}});
  const std::string provider = providers_.empty() ? kCpuProvider : providers_[0];
  for (const auto& run : runs) {
    events.push_back({"Session", "model_run", run.start_us, run.dur_us, {}});
    for (const auto& n : run.nodes) {
      events.push_back({"Node", n.name + "_kernel_time", run.start_us + n.start_us, n.duration_us,
                        {{"op_name", n.op_type}, {"provider", provider}, {"node_name", n.name}}});
    }
  }
  ASSIGN_OR_RETURN(std::string path, write_profile_trace(options_.profile_file_prefix, events));
  log_at(LogSeverity::kInfo, log_scope_, "profile of ", runs.size(), " run(s) written to ", path);
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
