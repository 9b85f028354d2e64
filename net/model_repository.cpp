#include "net/model_repository.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <filesystem>
#include <thread>

#include "devices/run_interrupt.h"

namespace pyflame_rt::net {
namespace fs = std::filesystem;
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_model_file(const fs::path& p) {
  std::string ext = p.extension().string();
  return fs::is_regular_file(p) && (ext == ".onnx" || ext == ".pfm");
}

// The model file of a version directory: model.onnx / model.pfm, else the only model file.
std::optional<fs::path> model_file_in(const fs::path& dir) {
  for (const char* n : {"model.onnx", "model.pfm"}) {
    if (fs::is_regular_file(dir / n)) return dir / n;
  }
  std::optional<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!is_model_file(e.path())) continue;
    if (found) return std::nullopt;  // ambiguous
    found = e.path();
  }
  return found;
}

double micros(BatchClock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

std::string names_of(const std::vector<TensorInfo>& infos) {
  std::string s;
  for (const auto& i : infos) s += (s.empty() ? "'" : ", '") + i.name + "'";
  return s;
}

}  // namespace

bool version_less(const std::string& a, const std::string& b) {
  if (all_digits(a) && all_digits(b) && a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

Status ModelConfig::validate() const {
  RETURN_IF_ERROR(batching.validate());
  RETURN_IF_ERROR(session.validate());
  if (default_priority_level < 1) {
    return invalid_argument("ModelConfig.default_priority_level: expected >= 1, got ", default_priority_level);
  }
  return Status::OK();
}

const char* model_state_name(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kUnloading: return "UNLOADING";
    case ModelState::kUnavailable: return "UNAVAILABLE";
  }
  return "UNAVAILABLE";
}

ServedModel::ServedModel(std::string name, std::string version, ModelConfig config,
                         std::shared_ptr<const BatchTarget> target, std::shared_ptr<const InferenceSession> session,
                         std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs,
                         std::shared_ptr<Batcher> batcher, std::shared_ptr<ModelMetrics> metrics)
    : name_(std::move(name)), version_(std::move(version)), config_(std::move(config)), target_(std::move(target)),
      session_(std::move(session)), inputs_(std::move(inputs)), outputs_(std::move(outputs)),
      batcher_(std::move(batcher)), metrics_(std::move(metrics)) {}

// The runs of the served models: a stop source their targets install around each run, and
// how many are in progress.
struct ModelRepository::Runs {
  std::shared_ptr<RunStopSource> source = std::make_shared<RunStopSource>("the model server is shutting down");
  std::atomic<int64_t> in_progress{0};
};

namespace {

// `inner`, each of whose runs belongs to the repository's stop source.
class StoppableTarget : public BatchTarget {
 public:
  StoppableTarget(std::shared_ptr<const BatchTarget> inner, std::shared_ptr<ModelRepository::Runs> runs)
      : inner_(std::move(inner)), runs_(std::move(runs)) {}
  const std::string& name() const override { return inner_->name(); }
  bool dynamic_batch() const override { return inner_->dynamic_batch(); }
  const std::vector<std::string>& output_names() const override { return inner_->output_names(); }
  Status validate(const std::map<std::string, Tensor>& feeds) const override { return inner_->validate(feeds); }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const override;

 private:
  std::shared_ptr<const BatchTarget> inner_;
  std::shared_ptr<ModelRepository::Runs> runs_;
};

}  // namespace

Expected<std::vector<Tensor>> StoppableTarget::run(const std::map<std::string, Tensor>& feeds) const {
  runs_->in_progress++;
  struct Done {
    std::atomic<int64_t>& n;
    ~Done() { n--; }
  } done{runs_->in_progress};
  RunStopScope scope(runs_->source);
  return inner_->run(feeds);
}

ModelRepository::ModelRepository(ModelConfig defaults)
    : defaults_(std::move(defaults)), runs_(std::make_shared<Runs>()) {}

int64_t ModelRepository::runs_in_progress() const { return runs_->in_progress; }

bool ModelRepository::stop_runs(std::chrono::milliseconds grace) {
  runs_->source->stop();
  const auto until = std::chrono::steady_clock::now() + grace;
  while (runs_->in_progress > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return runs_->in_progress == 0;
}

ModelRepository::~ModelRepository() { stop(); }

Status ModelRepository::set_directory(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    return make_status(StatusCode::kNoSuchFile, "model repository '", dir, "': not a directory");
  }
  directory_ = dir;
  return Status::OK();
}

Status ModelRepository::load_directory() {
  if (directory_.empty()) return invalid_argument("no model repository directory set");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(directory_)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
    else if (is_model_file(e.path())) names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  Status first = Status::OK();
  for (const auto& name : names) {
    Status st = load(name);
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

Expected<std::map<std::string, std::string>> ModelRepository::find_versions(const std::string& path,
                                                                            const std::string& version) const {
  std::map<std::string, std::string> found;
  if (fs::is_regular_file(path)) {
    found[version.empty() ? "1" : version] = path;
    return found;
  }
  if (!fs::is_directory(path)) {
    return make_status(StatusCode::kNoSuchFile, "model path '", path, "': no such file or directory");
  }
  for (const auto& e : fs::directory_iterator(path)) {
    std::string v = e.path().filename().string();
    if (!e.is_directory() || !all_digits(v) || (!version.empty() && v != version)) continue;
    if (auto file = model_file_in(e.path())) found[v] = file->string();
  }
  if (found.empty()) {
    if (auto file = model_file_in(path)) found[version.empty() ? "1" : version] = file->string();
  }
  if (found.empty()) {
    return make_status(StatusCode::kNoSuchFile, "model directory '", path,
                       "': no <version>/model.onnx (or .pfm) and no single model file",
                       version.empty() ? "" : " for version " + version);
  }
  return found;
}

Expected<std::shared_ptr<ServedModel>> ModelRepository::serve(
    const std::string& name, const std::string& version, const ModelConfig& config,
    std::shared_ptr<const BatchTarget> target, std::shared_ptr<const InferenceSession> session,
    std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs) {
  target = std::make_shared<StoppableTarget>(std::move(target), runs_);
  ASSIGN_OR_RETURN(std::shared_ptr<Batcher> batcher, Batcher::create(target, config.batching));
  return std::make_shared<ServedModel>(name, version, config, std::move(target), std::move(session),
                                       std::move(inputs), std::move(outputs), std::move(batcher),
                                       metrics_.model(name, version));
}

Status ModelRepository::begin_load(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) {
    return invalid_argument("model name '", name, "': expected a non-empty name without '/'");
  }
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = models_[name];
  if (e.state == ModelState::kLoading) {
    return make_status(StatusCode::kUnavailable, "model '", name, "' is already loading; retry when it is ready");
  }
  e.state = ModelState::kLoading;
  e.reason.clear();
  return Status::OK();
}

Status ModelRepository::finish_load(const std::string& name, const std::string& source,
                                    Expected<std::vector<std::shared_ptr<ServedModel>>> loaded) {
  std::map<std::string, std::shared_ptr<ServedModel>> old;  // released outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = models_[name];
  if (!source.empty()) e.source = source;
  if (!loaded.ok()) {
    // A failed reload keeps serving what was loaded before.
    e.state = e.versions.empty() ? ModelState::kUnavailable : ModelState::kReady;
    e.reason = loaded.status().message();
    return loaded.status();
  }
  old.swap(e.versions);
  for (auto& m : loaded.value()) e.versions[m->version()] = m;
  e.state = ModelState::kReady;
  e.reason.clear();
  return Status::OK();
}

Status ModelRepository::load(const std::string& name, const std::string& path, std::optional<ModelConfig> config,
                             const std::string& version) {
  ModelConfig cfg = config ? *config : defaults_;
  RETURN_IF_ERROR(cfg.validate());
  RETURN_IF_ERROR(begin_load(name));
  auto build = [&]() -> Expected<std::vector<std::shared_ptr<ServedModel>>> {
    ASSIGN_OR_RETURN(auto files, find_versions(path, version));
    std::vector<std::shared_ptr<ServedModel>> out;
    for (const auto& [v, file] : files) {
      auto session = InferenceSession::create(file, cfg.session);
      if (!session.ok()) return session.status().with_context("model '" + name + "' version " + v + ": ");
      std::shared_ptr<const InferenceSession> shared = std::move(session).value();
      ASSIGN_OR_RETURN(auto served, serve(name, v, cfg, make_session_target(shared, name), shared, shared->inputs(),
                                          shared->outputs()));
      out.push_back(std::move(served));
    }
    return out;
  };
  return finish_load(name, path, build());
}

Status ModelRepository::load(const std::string& name, std::shared_ptr<const InferenceSession> session,
                             std::optional<ModelConfig> config, const std::string& version) {
  if (!session) return invalid_argument("model '", name, "': the session is null");
  auto inputs = session->inputs();
  auto outputs = session->outputs();
  auto target = make_session_target(session, name);
  ModelConfig cfg = config ? *config : defaults_;
  RETURN_IF_ERROR(cfg.validate());
  RETURN_IF_ERROR(begin_load(name));
  auto served = serve(name, version.empty() ? "1" : version, cfg, std::move(target), std::move(session),
                      std::move(inputs), std::move(outputs));
  if (!served.ok()) return finish_load(name, "", served.status());
  return finish_load(name, "", std::vector<std::shared_ptr<ServedModel>>{served.value()});
}

Status ModelRepository::load(const std::string& name, std::shared_ptr<const BatchTarget> target,
                             std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs,
                             std::optional<ModelConfig> config, const std::string& version) {
  if (!target) return invalid_argument("model '", name, "': the target is null");
  ModelConfig cfg = config ? *config : defaults_;
  RETURN_IF_ERROR(cfg.validate());
  RETURN_IF_ERROR(begin_load(name));
  auto served = serve(name, version.empty() ? "1" : version, cfg, std::move(target), nullptr, std::move(inputs),
                      std::move(outputs));
  if (!served.ok()) return finish_load(name, "", served.status());
  return finish_load(name, "", std::vector<std::shared_ptr<ServedModel>>{served.value()});
}

Status ModelRepository::load(const std::string& name) {
  std::string source;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it != models_.end()) source = it->second.source;
  }
  if (source.empty() && !directory_.empty()) {
    fs::path dir = fs::path(directory_) / name;
    if (fs::is_directory(dir)) source = dir.string();
    for (const char* ext : {".onnx", ".pfm"}) {
      fs::path file = fs::path(directory_) / (name + ext);
      if (source.empty() && fs::is_regular_file(file)) source = file.string();
    }
  }
  if (source.empty()) {
    return make_status(StatusCode::kNotFound, "model '", name, "': not in the repository",
                       directory_.empty() ? " (no repository directory, and it was never loaded from a path)"
                                          : " directory '" + directory_ + "'");
  }
  return load(name, source);
}

Status ModelRepository::unload(const std::string& name) {
  std::map<std::string, std::shared_ptr<ServedModel>> old;  // requests in flight keep their model
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) {
    return make_status(StatusCode::kNotFound, "model '", name, "' is not loaded");
  }
  old.swap(it->second.versions);
  it->second.state = ModelState::kUnavailable;
  it->second.reason = "unloaded";
  return Status::OK();
}

void ModelRepository::stop() {
  std::map<std::string, Entry> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(models_);
  }
  for (auto& [name, e] : all) {
    for (auto& [v, m] : e.versions) m->batcher().stop();
  }
}

Expected<std::shared_ptr<ServedModel>> ModelRepository::find(const std::string& name,
                                                             const std::string& version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) {
    std::string loaded;
    for (const auto& [n, e] : models_) {
      if (!e.versions.empty()) loaded += (loaded.empty() ? "'" : ", '") + n + "'";
    }
    return make_status(StatusCode::kNotFound, "model '", name, "' is not loaded (loaded: ",
                       loaded.empty() ? "none" : loaded, ")");
  }
  const auto& versions = it->second.versions;
  if (version.empty()) {
    auto newest = std::max_element(versions.begin(), versions.end(),
                                   [](const auto& a, const auto& b) { return version_less(a.first, b.first); });
    return newest->second;
  }
  auto v = versions.find(version);
  if (v == versions.end()) {
    std::string have;
    for (const auto& [n, m] : versions) have += (have.empty() ? "" : ", ") + n;
    return make_status(StatusCode::kNotFound, "model '", name, "' has no version '", version, "' (loaded: ", have, ")");
  }
  return v->second;
}

Expected<ModelMetadata> ModelRepository::metadata(const std::string& name, const std::string& version) const {
  ASSIGN_OR_RETURN(std::shared_ptr<ServedModel> m, find(name, version));
  ModelMetadata md;
  md.name = name;
  md.platform = m->config().platform;
  md.inputs = m->inputs();
  md.outputs = m->outputs();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it != models_.end()) {
    for (const auto& [v, served] : it->second.versions) md.versions.push_back(v);
  }
  std::sort(md.versions.begin(), md.versions.end(), version_less);
  return md;
}

bool ModelRepository::model_ready(const std::string& name, const std::string& version) const {
  return find(name, version).ok();
}

bool ModelRepository::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, e] : models_) {
    if (e.versions.empty() && e.state == ModelState::kLoading) return false;
    if (e.versions.empty() && e.state == ModelState::kUnavailable && e.reason != "unloaded") return false;
  }
  return true;
}

std::vector<RepositoryEntry> ModelRepository::index() const {
  std::map<std::string, std::vector<RepositoryEntry>> rows;
  if (!directory_.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(directory_, ec)) {
      std::string n = e.is_directory() ? e.path().filename().string()
                                       : (is_model_file(e.path()) ? e.path().stem().string() : "");
      if (!n.empty()) rows[n] = {RepositoryEntry{n, "", ModelState::kUnavailable, "not loaded"}};
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, e] : models_) {
    auto& r = rows[name];
    r.clear();
    if (e.versions.empty()) r.push_back({name, "", e.state, e.reason});
    for (const auto& [v, m] : e.versions) r.push_back({name, v, e.state, e.reason});
  }
  std::vector<RepositoryEntry> out;
  for (auto& [name, r] : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

std::vector<std::string> ModelRepository::model_names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, e] : models_) {
    if (!e.versions.empty()) names.push_back(name);
  }
  return names;
}

void ModelRepository::infer(InferRequest request, InferCallback done) {
  auto found = find(request.model_name, request.model_version);
  if (!found.ok()) {
    metrics_.record_server_failure(failure_reason(found.status().code()));
    done(found.status());
    return;
  }
  std::shared_ptr<ServedModel> model = std::move(found).value();
  ModelMetrics& metrics = model->metrics();
  auto fail = [&](Status st) {
    metrics.record_failure(failure_reason(st.code()));
    done(std::move(st));
  };
  const std::string& name = model->name();
  if (request.sequence) {
    return fail(not_implemented("model '", name, "': sequence requests (sequence_id) are served by stream-capable ",
                                "listeners (gRPC ModelStreamInfer), not by this one"));
  }
  std::map<std::string, Tensor> feeds;
  for (auto& in : request.inputs) {
    if (!feeds.emplace(in.name, std::move(in.tensor)).second) {
      return fail(invalid_argument("model '", name, "': input '", in.name, "' is given twice"));
    }
  }
  std::vector<std::string> output_names;
  for (const auto& o : request.outputs) {
    auto it = std::find_if(model->outputs().begin(), model->outputs().end(),
                           [&](const TensorInfo& t) { return t.name == o.name; });
    if (it == model->outputs().end()) {
      return fail(invalid_argument("model '", name, "': unknown output '", o.name, "'; its outputs are ",
                                   names_of(model->outputs())));
    }
    output_names.push_back(o.name);
  }
  std::vector<std::string> answer_names = output_names;
  if (answer_names.empty()) {
    for (const auto& o : model->outputs()) answer_names.push_back(o.name);
  }
  int64_t rows = 1;
  if (model->dynamic_batch() && !feeds.empty() && feeds.begin()->second.rank() >= 1) rows = feeds.begin()->second.dim(0);
  int64_t level = request.priority == 0 ? model->config().default_priority_level : request.priority;
  int priority = -static_cast<int>(std::min<int64_t>(level, INT_MAX));  // the queue serves larger first

  metrics.enter();
  auto received = request.received;
  auto on_done = [model, done = std::move(done), answer_names = std::move(answer_names), id = std::move(request.id),
                  received, rows](BatchResult result, const BatchTiming& timing) {
    ModelMetrics& m = model->metrics();
    m.leave();
    if (timing.batch_size > 0 && timing.batch_index == 0) m.record_execution(timing.batch_size);
    if (!result.ok()) {
      m.record_failure(failure_reason(result.status().code()));
      done(result.status());
      return;
    }
    InferResponse response;
    response.model_name = model->name();
    response.model_version = model->version();
    response.id = id;
    std::vector<Tensor>& tensors = result.value();
    for (size_t i = 0; i < tensors.size() && i < answer_names.size(); ++i) {
      response.outputs.push_back({answer_names[i], std::move(tensors[i]), {}});
    }
    m.record_success(micros(BatchClock::now() - received), micros(timing.started - timing.enqueued),
                     micros(timing.finished - timing.started), rows);
    done(std::move(response));
  };
  model->batcher().submit(std::move(feeds), output_names, priority, std::move(on_done), request.timeout_us);
}

}  // namespace pyflame_rt::net
