// ModelRepository: the models a server serves, by name and version, each behind its own
// Batcher (dynamic batching on the actor runtime). Owned by the server process, shared by every
// listener; CAF stays out of this header.
//
//   ModelRepository repo;                                     // defaults for every model
//   RETURN_IF_ERROR(repo.load("tiny_cnn", "examples/models/tiny_cnn.onnx"));
//   repo.infer(std::move(request), [](Expected<InferResponse> r) { /* post to the I/O thread */ });
//   repo.index();                                             // /v2/repository/index
//   repo.unload("tiny_cnn");                                  // requests in flight still finish
//
// Model code never runs on the caller's thread: infer() validates, enqueues and returns; the
// batcher's device actor runs the model and calls back. A directory in Triton's layout
// (DIR/<name>/<version>/model.onnx, or DIR/<name>.onnx as version 1) gives load-by-name.
// Pipelines are served through the BatchTarget overload of load() (anything that runs feeds).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/batch_target.h"
#include "actors/batcher.h"
#include "session/inference_session.h"
#include "session/session_options.h"
#include "net/infer_types.h"
#include "net/metrics.h"

namespace pyflame_rt::net {

struct ModelConfig {
  BatchOptions batching;   // max_batch_size, batch_timeout_ms, preferred sizes, queue bound
  SessionOptions session;  // for models loaded from a file
  // KServe/Triton priorities: 1 is the highest, larger numbers lower; a request without one
  // (priority 0) ranks as this level, so priorities 1..9 overtake it by default.
  int64_t default_priority_level = 10;
  std::string platform = "pyflame_rt_onnx";

  Status validate() const;
};

enum class ModelState { kLoading, kReady, kUnloading, kUnavailable };
const char* model_state_name(ModelState state);  // LOADING, READY, UNLOADING, UNAVAILABLE

// One row of the repository index (Triton: name, version, state, reason).
struct RepositoryEntry {
  std::string name;
  std::string version;  // empty for a model known only from the directory
  ModelState state = ModelState::kUnavailable;
  std::string reason;   // why it is unavailable
};

// One loaded model version.
class ServedModel {
 public:
  ServedModel(std::string name, std::string version, ModelConfig config,
              std::shared_ptr<const BatchTarget> target, std::shared_ptr<const InferenceSession> session,
              std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs,
              std::shared_ptr<Batcher> batcher, std::shared_ptr<ModelMetrics> metrics);
  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const ModelConfig& config() const { return config_; }
  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  bool dynamic_batch() const { return target_->dynamic_batch(); }
  // Null for a model served from a BatchTarget (a pipeline).
  const std::shared_ptr<const InferenceSession>& session() const { return session_; }
  Batcher& batcher() const { return *batcher_; }
  ModelMetrics& metrics() const { return *metrics_; }

 private:
  std::string name_, version_;
  ModelConfig config_;
  std::shared_ptr<const BatchTarget> target_;
  std::shared_ptr<const InferenceSession> session_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::shared_ptr<Batcher> batcher_;
  std::shared_ptr<ModelMetrics> metrics_;
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;  // loaded, ascending
  std::string platform;
  std::vector<TensorInfo> inputs, outputs;
};

class ModelRepository {
 public:
  explicit ModelRepository(ModelConfig defaults = {});
  ~ModelRepository();
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Where load(name) finds models. Does not load them (load_directory() does).
  Status set_directory(const std::string& dir);
  const std::string& directory() const { return directory_; }
  // Loads every model of the directory; the first failure is returned, the others still load.
  Status load_directory();

  // A model file (.onnx or .pfm) as `version` (empty: "1"), or a directory in Triton's layout
  // (<path>/<version>/model.onnx: every version found). Replaces a loaded model of that name;
  // the old one finishes its requests first. Blocks while the model compiles.
  Status load(const std::string& name, const std::string& path, std::optional<ModelConfig> config = {},
              const std::string& version = "");
  Status load(const std::string& name, std::shared_ptr<const InferenceSession> session,
              std::optional<ModelConfig> config = {}, const std::string& version = "");
  // Anything that runs feeds (a pipeline): its inputs/outputs describe it in the metadata.
  Status load(const std::string& name, std::shared_ptr<const BatchTarget> target, std::vector<TensorInfo> inputs,
              std::vector<TensorInfo> outputs, std::optional<ModelConfig> config = {},
              const std::string& version = "");
  // Reloads by name: from the path it was last loaded from, else from the directory.
  Status load(const std::string& name);
  // Stops serving `name` (every version). Requests already accepted still finish.
  Status unload(const std::string& name);
  // Stops every batcher: queued requests are answered kUnavailable. For server shutdown.
  void stop();
  // Stops the runs of every served model at their next check (kUnavailable "the run was
  // stopped: the model server is shutting down"; the process's other runs go on) and waits up
  // to `grace` for those in progress to end, so that their callers are answered why. True
  // when none is left running. Runs started later fail at once.
  bool stop_runs(std::chrono::milliseconds grace);
  int64_t runs_in_progress() const;

  // `version` empty = the newest loaded version. kNotFound names what is loaded.
  Expected<std::shared_ptr<ServedModel>> find(const std::string& name, const std::string& version = "") const;
  Expected<ModelMetadata> metadata(const std::string& name, const std::string& version = "") const;
  bool model_ready(const std::string& name, const std::string& version = "") const;
  // True when every model that is loaded or loading is ready (and none failed to load).
  bool ready() const;
  std::vector<RepositoryEntry> index() const;
  std::vector<std::string> model_names() const;  // loaded, sorted

  // Validates and enqueues; `done` runs once with the answer (see InferCallback). Unknown
  // model/version -> kNotFound; bad inputs/outputs -> kInvalidArgument; full queue ->
  // kResourceExhausted. Every outcome is counted in metrics().
  void infer(InferRequest request, InferCallback done);

  Metrics& metrics() { return metrics_; }
  const ModelConfig& defaults() const { return defaults_; }

  // Every served model's runs (their targets install its stop source: RunStopScope), for
  // stop_runs(); defined in model_repository.cpp.
  struct Runs;

 private:
  struct Entry {
    ModelState state = ModelState::kUnavailable;
    std::string reason;
    std::string source;  // path to reload from
    std::map<std::string, std::shared_ptr<ServedModel>> versions;
  };
  // Builds a ServedModel (batcher, metrics) for a target; no lock held.
  Expected<std::shared_ptr<ServedModel>> serve(const std::string& name, const std::string& version,
                                               const ModelConfig& config, std::shared_ptr<const BatchTarget> target,
                                               std::shared_ptr<const InferenceSession> session,
                                               std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs);
  // Marks `name` LOADING; fails if it is already loading (two loads of one name race).
  Status begin_load(const std::string& name);
  Status finish_load(const std::string& name, const std::string& source,
                     Expected<std::vector<std::shared_ptr<ServedModel>>> loaded);
  // Model files found for `name` in the directory: version -> path.
  Expected<std::map<std::string, std::string>> find_versions(const std::string& path_or_dir,
                                                             const std::string& version) const;

  ModelConfig defaults_;
  std::shared_ptr<Runs> runs_;
  std::string directory_;
  Metrics metrics_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> models_;
};

// Versions sort numerically when both are numbers ("2" < "10"), else as text.
bool version_less(const std::string& a, const std::string& b);

}  // namespace pyflame_rt::net
