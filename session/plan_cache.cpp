#include "session/plan_cache.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "compiler/compile_cache.h"
#include "devices/device_registry.h"
#include "graph/pfm_format.h"
#include "graph/version.h"

namespace pyflame_rt {

namespace {

// Everything but the model bytes that a plan depends on, one "name=value" a line. A field
// that may change the plan and is left out here would hand a session a wrong plan: when in
// doubt, add it (a spurious miss costs one compile).
std::string plan_inputs(const SessionOptions& o, const std::vector<std::string>& providers) {
  std::ostringstream os;
  os << "plan_format=" << kPlanFormatVersion << "\noptimizer=" << kOptimizerRevision << "\npfm=" << kPfmFormatVersion
     << "\nruntime=" << version_string() << "\ncpu=" << plan_cpu_id() << "\nopt_level=" << static_cast<int>(o.optimization_level)
     << "\ndevice=" << o.device << "\nexecution_mode=" << o.execution_mode << "\n";
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
  std::string inputs = plan_inputs(options, providers);
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  XXH3_128bits_update(state, inputs.data(), inputs.size());
  XXH3_128bits_update(state, model_bytes.data(), model_bytes.size());
  XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return hex;
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
