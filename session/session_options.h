// SessionOptions: every knob of a session, with the names of the seed API and ONNX Runtime.
// session/session_option_fields.h lists the fields by name for bindings (Python reads the
// names, kinds and defaults from there: there is no second copy of this struct).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/opt_level.h"
#include "graph/status.h"

namespace pyflame_rt {

struct SessionOptions {
  // The seed API's device selector: "cpu", or a wafer ("wse" = newest, "wse2", "wse3"), which
  // stands for providers [that wafer, CPU] when the session is given no providers list.
  std::string device = "cpu";
  int num_threads = 0;                      // intra-op threads; 0 = one per core
  bool enable_profiling = false;
  std::string profile_file_prefix = "pyflame_rt_profile";
  // Bytes a run may hold at once (intermediates and outputs it allocates; feeds and weights
  // excluded), checked at creation against the plan's estimate and at run time (each
  // allocation): past it the run fails with kResourceExhausted, the session stays usable.
  int64_t memory_limit_mb = 0;              // 0 = no limit
  // The deadline of every run of this session (run(), batchers, streams, pipelines, the
  // server) whose RunOptions.timeout_ms is 0: a hostile model (a Loop of 2^62 trips) or feed
  // (a trip count as an input) cannot hold a run forever. Checked where RunOptions.timeout_ms
  // is: between nodes and Loop/Scan iterations. 0 = none.
  int64_t run_timeout_ms = 0;
  // A model file (or bytes) larger than this is refused before it is parsed. 2048 MB is
  // protobuf's own ceiling for an ONNX file (weights beyond it live in external data, which
  // is not counted here); .pfm files and plans may need more. 0 = no limit.
  int64_t max_model_size_mb = 2048;
  // Streams (create_stream) open at once on this session; one more is kResourceExhausted.
  // 0 = no limit (each stream is its caller's object; the server bounds its own sequences).
  int64_t max_streams = 0;
  std::string execution_mode = "sequential";  // sequential or parallel
  // Where the CPU device's intermediates live (devices/cpu/buffer_pool.h): "arena" keeps
  // them for later runs (one pool per concurrent run, nothing allocated in a steady state);
  // "default" reuses them within a run and frees them at its end; "custom" is accepted and
  // behaves as "default" (there is no custom allocator API yet). The default is "arena", as
  // in ONNX Runtime: measured against plain oneDNN allocations (49 / 219-221 MB peak RSS for
  // MobileNetV2 / ResNet-50), "default" raised the peak to 56 / 226 MB (malloc fragments when
  // each run frees its buffers and takes them again), "arena" did not (49-50 / 219 MB); no
  // latency difference either way.
  std::string memory_pool = "arena";
  // ORT's enable_mem_reuse/enable_mem_pattern: false gives every intermediate its own
  // allocation, freed after its last reader (and makes memory_pool moot).
  bool enable_memory_reuse = true;
  OptLevel optimization_level = OptLevel::kAll;
  std::vector<std::string> disabled_passes;  // pass names to skip
  std::string optimized_model_path;          // when set, the optimised graph is saved there
  // When set, optimised graphs are cached there by content (compiler/compile_cache.h): a later
  // session of the same model and settings skips the passes.
  std::string compile_cache_dir;
  // Per provider, its options (ONNX Runtime's provider_options): {"CerebrasExecutionProvider":
  // {"fabric": "64x64"}}. Each device checks its own keys.
  std::map<std::string, std::map<std::string, std::string>> provider_options;
  // Where devices write what they generate (the wafer's CSL programs); "" = a folder of the
  // compile cache when there is one, else none is written.
  std::string artifacts_dir;

  // Logging (graph/logging.h): the session's tag on log lines (empty: "session-<n>") and
  // ORT's log_severity_level (0 verbose .. 4 fatal, -1 the process default) and verbosity.
  std::string log_id;
  int log_severity_level = -1;
  int log_verbosity_level = 0;
  // Symbolic input dims fixed before optimisation (ORT's add_free_dimension_override_by_name
  // and _by_denotation): {"batch": 1} makes every "batch" dim 1.
  std::map<std::string, int64_t> free_dimension_overrides;
  std::map<std::string, int64_t> free_dimension_overrides_by_denotation;
  // Whole input shapes by input name, "1,3,224,224": the input's free dims take these values
  // (its known dims must agree). A compiled plan is specialised to them (session/plan_cache.h).
  std::map<std::string, std::string> input_shapes;
  // ORT options without an equivalent here: accepted, and a session warns when one is set to
  // anything but its default (inter-op parallelism is fixed at two workers, the CPU kernels
  // do not trade determinism for speed).
  int inter_op_num_threads = 0;
  bool use_deterministic_compute = false;
  // ORT's enable_cpu_mem_arena: false is memory_pool "default" (buffers freed after each run).
  bool enable_cpu_mem_arena = true;
  // ORT's add_session_config_entry. Understood: "session.save_model_format" ("ONNX" or "PFM",
  // else told by optimized_model_path's extension) and "session.set_denormal_as_zero" ("0",
  // the default, or "1": see flush_denormals()); others are kept and warned about.
  std::map<std::string, std::string> config_entries;

  // Whether the CPU kernels flush denormal floats to zero (devices/cpu/denormals.h): when
  // "session.set_denormal_as_zero" is "1" (ONNX Runtime's meaning and default, "0"). Faster
  // where a model makes denormals (each costs ~100x in arithmetic), but a comparison with 0
  // then sees 0 (a detector's `score > 0` drops what ONNX Runtime keeps).
  bool flush_denormals() const;

  // Checks every field; the message names the field, the expected and the received value.
  Status validate() const;
};

}  // namespace pyflame_rt
