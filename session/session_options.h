// SessionOptions: every knob of a session, with the names of the seed API and ONNX Runtime.
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
  int64_t memory_limit_mb = 0;              // 0 = no limit
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

  // Checks every field; the message names the field, the expected and the received value.
  Status validate() const;
};

}  // namespace pyflame_rt
