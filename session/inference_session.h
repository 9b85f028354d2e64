// InferenceSession: the public C++ API, shaped like ONNX Runtime's.
//
//   pyflame_rt::SessionOptions opts;
//   auto session = pyflame_rt::InferenceSession::create("model.onnx", opts);
//   if (!session.ok()) { std::cerr << session.status().to_string(); return 1; }
//   std::map<std::string, pyflame_rt::Tensor> feeds{{"x", x}};
//   auto outputs = (*session)->run({}, feeds);   // {} = all outputs, in model order
//
// A session is immutable after creation and run() may be called from several threads.
// Every run validates the feed against the model (names, dtypes, ranks, known dims) and
// errors name the input, the expected and the received value; a failed run leaves the
// session usable.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "devices/device.h"
#include "graph/graph.h"
#include "graph/logging.h"
#include "graph/model_metadata.h"
#include "session/compiled_model.h"
#include "session/limit_counters.h"
#include "session/plan_file.h"
#include "session/run_options.h"
#include "session/session_options.h"
#include "graph/tensor.h"

namespace pyflame_rt {

struct FoldLimits;  // compiler/passes/constant_folding.h

// What constant folding may hold and take for one node at the creation of a session (or of a
// partitioned model, actors/partitioned_model.cpp) with these options: memory_limit_mb and
// run_timeout_ms (compiler/passes/constant_folding.h).
FoldLimits fold_limits(const SessionOptions& options);

// Input/output metadata in ONNX Runtime's terms (NodeArg: name, shape, type).
struct TensorInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
  std::string type() const { return dtype_onnx_name(dtype); }  // "tensor(float)"
};

// Checks `t` against a model input's dtype, rank and known dims, except along `skip_axis`
// (>= 0: a stream's time axis). Errors start with `what` ("input 'x'").
Status check_tensor_against(DType dtype, const Shape& shape, const Tensor& t, const std::string& what,
                            int skip_axis = -1);

constexpr const char* kCpuProvider = "CPUExecutionProvider";
constexpr const char* kCerebrasProvider = "CerebrasExecutionProvider";

class InferenceSession {
 public:
  static Expected<std::unique_ptr<InferenceSession>> create(
      const std::string& model_path, const SessionOptions& options = {},
      const std::vector<std::string>& providers = {});
  static Expected<std::unique_ptr<InferenceSession>> create_from_bytes(
      const std::string& model_bytes, const SessionOptions& options = {},
      const std::vector<std::string>& providers = {});
  static Expected<std::unique_ptr<InferenceSession>> create_from_graph(
      Graph graph, const SessionOptions& options = {},
      const std::vector<std::string>& providers = {});
  ~InferenceSession();

  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  // Providers in effect, in priority order (what ONNX Runtime's get_providers() returns):
  // those requested that this build has, then CPUExecutionProvider (always the last resort).
  const std::vector<std::string>& providers() const { return providers_; }
  // Devices that run at least one node, in run order ("wse3", "cpu").
  std::vector<std::string> devices_used() const { return compiled_->devices_used(); }
  const SessionOptions& options() const { return options_; }
  // Warnings from creation (a provider not available here, options ignored, compile-cache
  // problems). Each was also logged with the session's log id, as are fallback nodes.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // What the model says about itself (ONNX Runtime's get_modelmeta()).
  const ModelMetadata& metadata() const { return metadata_; }
  // Initializers a feed may override (IR < 4 models list them as inputs too).
  const std::vector<TensorInfo>& overridable_initializers() const { return overridable_; }
  // The session's tag and threshold on log lines (SessionOptions.log_id or "session-<n>").
  const LogScope& log_scope() const { return log_scope_; }
  // True when the compiled model came from a plan: SessionOptions.compile_cache_dir had it,
  // or the model file is a plan (`pyflame-rt compile`).
  bool compiled_from_cache() const { return compiled_from_cache_; }
  // Where creation spent its time, in ms: "plan_key", "plan_load", "import", "passes",
  // "compile", "plan_store" (only the steps this creation took).
  const std::map<std::string, double>& startup_phases() const { return startup_phases_; }
  // The graph after import and the device-independent passes (before placement). From a
  // plan it has the model's inputs and outputs only: the nodes live in compiled_model().
  const Graph& graph() const { return graph_; }
  // Writes what runs as a plan file (session/plan_file.h) that create() runs directly, with
  // no import, passes or cache: `pyflame-rt compile`. Atomic; valid on this CPU only.
  Status save_plan(const std::string& path) const;
  // What runs: the placed, partitioned, compiled model.
  const CompiledModel& compiled_model() const { return *compiled_; }

  // `output_names` empty = every output in model order. Unknown names are kInvalidArgument.
  Expected<std::vector<Tensor>> run(const std::vector<std::string>& output_names,
                                    const std::map<std::string, Tensor>& feeds) const;
  // With RunOptions: terminate cancels the run between nodes (kFail), log_id and the levels
  // tag and filter the run's log lines.
  Expected<std::vector<Tensor>> run(const std::vector<std::string>& output_names,
                                    const std::map<std::string, Tensor>& feeds, const RunOptions& run_options) const;
  // run() that returns Values: sequence outputs come back as sequences (run() refuses them).
  Expected<std::vector<Value>> run_values(const std::vector<std::string>& output_names,
                                          const std::map<std::string, Tensor>& feeds,
                                          const RunOptions& run_options) const;
  // run_values() into the caller's buffers (ONNX Runtime's IOBinding with pre-allocated
  // outputs): `preallocated` maps requested output names to tensors wrapping those buffers
  // (Tensor::wrap; alive and untouched by the caller until the run returns). The CPU device
  // writes such an output straight into its buffer when its last writer is a native op with
  // the bound dtype, dims and the plain layout; any other is copied in after the run. The
  // returned Value of a bound output is the bound tensor. `in_place` (may be null) receives,
  // per requested output, whether it was written in place (false for unbound outputs).
  // A bound buffer of the wrong dtype or shape is kInvalidArgument naming the output, the
  // expected and the received, before the run (or after it, for dims the model leaves open).
  Expected<std::vector<Value>> run_values(const std::vector<std::string>& output_names,
                                          const std::map<std::string, Tensor>& feeds, const RunOptions& run_options,
                                          const std::map<std::string, Tensor>& preallocated,
                                          std::vector<bool>* in_place) const;

  // How often each limit stopped one of this session's runs: runs_deadline_exceeded
  // (RunOptions.timeout_ms), runs_memory_exceeded (memory_limit_mb), runs_terminated.
  std::map<std::string, uint64_t> limit_counters() const { return counters_.snapshot(); }
  // Stream slots (SessionOptions.max_streams): Stream::create takes one (kResourceExhausted
  // naming the limit when none is left), the stream's destructor gives it back.
  Status acquire_stream_slot(const std::string& stream) const;
  void release_stream_slot() const { open_streams_.fetch_sub(1); }
  int64_t open_streams() const { return open_streams_.load(); }

  // The checks run() does on a feed (names, dtypes, ranks, known dims), without running:
  // batchers and streams use it to reject a bad request before it joins others.
  Status validate_feeds(const std::map<std::string, Tensor>& feeds) const;

  // Nodes placed on a later provider than the first one asked for (with the reason), and
  // nodes a device runs on a slower fallback path (reference kernels), "Op 'name'".
  std::vector<std::string> fallback_nodes() const { return compiled_->fallback_nodes(); }
  // Every node with the device and kernel that ran it.
  std::vector<NodeKernel> node_kernels() const { return compiled_->node_kernels(); }
  // The devices' own reports (the wafer's placement, SRAM and cycle estimates) as JSON:
  // {"partitions": [{"name", "device", "nodes", "report"}]}.
  std::string device_report_json() const { return compiled_->report_json(); }

  // With SessionOptions.enable_profiling every run is timed per node; end_profiling() writes
  // the session's events (model loading, initialisation) and the runs since the last call in
  // ONNX Runtime's trace format (session/profile_trace.h), to a new file each time, and
  // returns its path ("" without enable_profiling).
  Expected<std::string> end_profiling();
  // When profiling started (the session's creation), in nanoseconds since the epoch.
  int64_t profiling_start_time_ns() const { return profiling_start_ns_; }

  // run() that also times every node (name, op type, microseconds, in execution order).
  struct ProfiledRun {
    std::vector<Tensor> outputs;
    std::vector<NodeTiming> nodes;
  };
  Expected<ProfiledRun> run_with_profiling(const std::vector<std::string>& output_names,
                                           const std::map<std::string, Tensor>& feeds) const;

 private:
  InferenceSession() = default;
  // The common end of create*(): `load_start` is when reading the model began (the origin
  // of the profiling trace), `load_event` names that step in the trace.
  static Expected<std::unique_ptr<InferenceSession>> create_loaded(
      Graph graph, ModelMetadata metadata, std::chrono::steady_clock::time_point load_start, const char* load_event,
      const SessionOptions& options, const std::vector<std::string>& providers,
      PlanContents* plan = nullptr, const std::string& plan_key = "", std::map<std::string, double> phases = {});
  // create() and create_from_bytes() with a plan cache: the plan when there is one, else
  // import (`model_path`, or `model_bytes` when it is empty) and compile, and store the plan.
  static Expected<std::unique_ptr<InferenceSession>> create_via_plan(
      const std::string& content_hash, std::string_view model_bytes, const std::string& model_path,
      const SessionOptions& options, const std::vector<std::string>& providers,
      std::chrono::steady_clock::time_point start);
  // initialize() from a plan: devices from the providers, the compiled model from the plan.
  Status initialize_from_plan(PlanContents plan, const SessionOptions& options,
                              const std::vector<std::string>& providers);
  // Stores the compiled model under plan_key_ when it can be (a failure is a warning).
  void store_plan();
  // Adds the packed weights of a shape-specialised plan (after one run on zeros).
  // `leave_out`: weights only packed kernels read are not stored (session/plan_weights.h).
  // Only for cache entries, which a hit that cannot use its blobs compiles again; a plan file
  // (save_plan) has no model to compile from, so it keeps them and repacks instead.
  void pack_for_plan(PlanContents* plan, bool leave_out) const;
  // Records a creation warning and logs it with the session's id.
  void warn(const std::string& message);
  // Fixes symbolic input dims named in free_dimension_overrides(_by_denotation).
  // Then the shapes in SessionOptions.input_shapes (an error names the input, the expected and
  // the given shape).
  Status apply_free_dimension_overrides(Graph& graph) const;
  // Warns about accepted options that have no effect here.
  void warn_ignored_options(const SessionOptions& options);
  // graph_ from the compile cache when it has this model, else by running the passes.
  Status optimize_or_load_cached(Graph graph, const SessionOptions& options);
  Status initialize(Graph graph, const SessionOptions& options,
                    const std::vector<std::string>& providers);
  // The devices for `providers` (or SessionOptions.device) in priority order; providers this
  // build does not have are skipped with a warning, as ONNX Runtime does.
  Expected<std::vector<std::shared_ptr<Device>>> create_devices(const SessionOptions& options,
                                                                const std::vector<std::string>& providers);
  // Validates names and feeds; fills the executable's inputs and the wanted output indices.
  Status prepare(const std::vector<std::string>& output_names, const std::map<std::string, Tensor>& feeds,
                 std::vector<size_t>* wanted, std::vector<Value>* inputs) const;
  Expected<std::vector<Tensor>> select_outputs(std::vector<Value> results, const std::vector<size_t>& wanted) const;

  SessionOptions options_;
  Graph graph_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
  std::vector<std::string> providers_;
  std::vector<std::string> warnings_;
  bool compiled_from_cache_ = false;
  std::string plan_key_;  // the plan cache key this session's compile is stored under
  std::map<std::string, double> startup_phases_;
  ModelMetadata metadata_;
  LogScope log_scope_;
  std::map<std::string, Tensor> overridable_defaults_;  // IR<4 initializers listed as inputs
  std::vector<TensorInfo> overridable_;
  struct TracedRun {
    double start_us = 0;  // since session creation
    double dur_us = 0;
    std::vector<NodeTiming> nodes;
  };
  mutable std::mutex trace_mu_;
  mutable std::vector<TracedRun> trace_;
  std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
  int64_t profiling_start_ns_ = 0;
  double load_us_ = 0, init_us_ = 0;  // model loading and initialisation times
  const char* load_event_ = "model_loading_uri";
  std::shared_ptr<const CompiledModel> compiled_;
  mutable LimitCounters counters_;
  mutable std::atomic<int64_t> open_streams_{0};
};

}  // namespace pyflame_rt
