#include "session/session_options.h"

#include <algorithm>

namespace pyflame_rt {

namespace {
Status check_one_of(const char* field, const std::string& value,
                    const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return Status::OK();
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("'" + a + "'");
  return invalid_argument("SessionOptions.", field, ": expected one of ", list, ", got '", value, "'");
}
}  // namespace

Status SessionOptions::validate() const {
  RETURN_IF_ERROR(check_one_of("device", device, {"cpu", "wse", "wse2", "wse3"}));
  RETURN_IF_ERROR(check_one_of("execution_mode", execution_mode, {"sequential", "parallel"}));
  RETURN_IF_ERROR(check_one_of("memory_pool", memory_pool, {"default", "arena", "custom"}));
  if (num_threads < 0) {
    return invalid_argument("SessionOptions.num_threads: expected >= 0 (0 = one per core), got ",
                            num_threads);
  }
  if (memory_limit_mb < 0) {
    return invalid_argument("SessionOptions.memory_limit_mb: expected >= 0 (0 = no limit), got ",
                            memory_limit_mb);
  }
  if (run_timeout_ms < 0) {
    return invalid_argument("SessionOptions.run_timeout_ms: expected >= 0 (0 = no deadline), got ", run_timeout_ms);
  }
  if (max_model_size_mb < 0) {
    return invalid_argument("SessionOptions.max_model_size_mb: expected >= 0 (0 = no limit), got ",
                            max_model_size_mb);
  }
  if (max_streams < 0) {
    return invalid_argument("SessionOptions.max_streams: expected >= 0 (0 = no limit), got ", max_streams);
  }
  if (log_severity_level < -1 || log_severity_level > 4) {
    return invalid_argument("SessionOptions.log_severity_level: expected 0 (verbose) .. 4 (fatal), or -1 for the "
                            "default, got ", log_severity_level);
  }
  for (const auto& [name, size] : free_dimension_overrides) {
    if (size < 0) return invalid_argument("free dimension override '", name, "': expected a size >= 0, got ", size);
  }
  if (auto it = config_entries.find("session.set_denormal_as_zero"); it != config_entries.end()) {
    if (it->second != "0" && it->second != "1") {
      return invalid_argument("session config entry 'session.set_denormal_as_zero': expected '0' or '1', got '",
                              it->second, "'");
    }
  }
  for (const auto& [name, size] : free_dimension_overrides_by_denotation) {
    if (size < 0) return invalid_argument("free dimension override by denotation '", name, "': expected a size >= 0, got ", size);
  }
  return Status::OK();
}

bool SessionOptions::flush_denormals() const {
  auto it = config_entries.find("session.set_denormal_as_zero");
  return it != config_entries.end() && it->second == "1";
}

}  // namespace pyflame_rt
