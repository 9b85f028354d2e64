#include "session/plan_cache.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "compiler/compile_cache.h"
#include "devices/device_registry.h"
#include "graph/pfm_format.h"
#include "graph/version.h"
#include "session/mapped_file.h"

namespace pyflame_rt {

namespace {

// Everything but the model bytes that a plan depends on, one "name=value" a line. A field
// that may change the plan and is left out here would hand a session a wrong plan: when in
// doubt, add it (a spurious miss costs one compile).
std::string plan_inputs(const SessionOptions& o, const std::vector<std::string>& providers) {
  std::ostringstream os;
  os << "plan_format=" << kPlanFormatVersion << "\noptimizer=" << kOptimizerRevision << "\npfm=" << kPfmFormatVersion
     << "\nruntime=" << version_string() << "\ncpu=" << plan_cpu_id() << "\nopt_level=" << static_cast<int>(o.optimization_level)
     << "\ndevice=" << o.device << "\nexecution_mode=" << o.execution_mode
     // oneDNN lays out packed weights for the threads that create a primitive: an entry whose
     // raw weights are left out (plan_weights.h) only fits sessions with the same team.
     << "\nintra_op_threads=" << o.num_threads << "\n";
  for (const auto& p : o.disabled_passes) os << "disabled_pass=" << p << "\n";
  for (const auto& p : providers) os << "provider=" << p << "\n";
  for (const auto& p : DeviceRegistry::global().available_providers()) os << "available=" << p << "\n";
  for (const auto& [provider, opts] : o.provider_options) {
    for (const auto& [k, v] : opts) os << "provider_option=" << provider << ":" << k << "=" << v << "\n";
  }
  for (const auto& [k, v] : o.free_dimension_overrides) os << "free_dim=" << k << "=" << v << "\n";
  for (const auto& [k, v] : o.free_dimension_overrides_by_denotation) os << "free_dim_denotation=" << k << "=" << v << "\n";
  for (const auto& [k, v] : o.input_shapes) os << "input_shape=" << k << "=" << v << "\n";
  return os.str();
}

std::string hex128(XXH128_hash_t h) {
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return hex;
}

Status make_dirs(const std::string& dir) {
  std::string partial;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') partial = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    partial += part + "/";
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return make_status(StatusCode::kFail, "cannot create the plan cache directory '", partial, "': ",
                         std::strerror(errno));
    }
  }
  return Status::OK();
}

}  // namespace

std::string PlanCache::key(std::string_view model_bytes, const SessionOptions& options,
                           const std::vector<std::string>& providers) {
  return key_for(content_hash(model_bytes), options, providers);
}

std::string PlanCache::content_hash(std::string_view model_bytes) {
  return hex128(XXH3_128bits(model_bytes.data(), model_bytes.size()));
}

std::string PlanCache::key_for(const std::string& content_hash, const SessionOptions& options,
                               const std::vector<std::string>& providers) {
  std::string inputs = "model=" + content_hash + "\n" + plan_inputs(options, providers);
  return hex128(XXH3_128bits(inputs.data(), inputs.size()));
}

Expected<std::string> PlanCache::file_content_hash(const std::string& path) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_status(StatusCode::kNoSuchFile, "model file '", path, "' cannot be opened: ", std::strerror(errno));
  }
  char stamp[256];
  std::snprintf(stamp, sizeof stamp, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st.st_dev,
                (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  std::string identity = path + "\n" + stamp;
  std::string memo = dir_ + "/files/" + hex128(XXH3_128bits(identity.data(), identity.size())).substr(0, 16);
  {
    std::ifstream in(memo);
    std::string line, hash;
    // The memo names the file and stamps it was taken under, then the hash.
    if (std::getline(in, line) && line == identity.substr(0, identity.find('\n')) && std::getline(in, line) &&
        line == stamp && std::getline(in, hash) && hash.size() == 32 &&
        hash.find_first_not_of("0123456789abcdef") == std::string::npos) {
      return hash;
    }
  }
  ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  std::string hash = content_hash(file->bytes());
  // Best effort: a memo that cannot be written only means hashing the file next time.
  if (make_dirs(dir_ + "/files").ok()) {
    std::string tmp = memo + ".tmp." + std::to_string(::getpid());
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << path << "\n" << stamp << "\n" << hash << "\n";
    }
    if (std::rename(tmp.c_str(), memo.c_str()) != 0) std::remove(tmp.c_str());
  }
  return hash;
}

Expected<PlanContents> PlanCache::load(const std::string& key) const {
  std::string path = path_of(key);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return make_status(StatusCode::kNotFound, "no plan '", path, "'");
  return read_plan_file(path, key);
}

Status PlanCache::store(const std::string& key, const PlanContents& contents) const {
  RETURN_IF_ERROR(make_dirs(dir_));
  return write_plan_file(path_of(key), key, contents);
}

}  // namespace pyflame_rt
