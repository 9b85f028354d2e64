#include "session/session_option_fields.h"

namespace pyflame_rt {

namespace {

template <typename T> struct KindOf;
template <> struct KindOf<bool> { static constexpr const char* name = "bool"; using Stored = bool; };
template <> struct KindOf<int> { static constexpr const char* name = "int"; using Stored = int64_t; };
template <> struct KindOf<int64_t> { static constexpr const char* name = "int"; using Stored = int64_t; };
template <> struct KindOf<OptLevel> { static constexpr const char* name = "int"; using Stored = int64_t; };
template <> struct KindOf<std::string> { static constexpr const char* name = "str"; using Stored = std::string; };
template <> struct KindOf<std::vector<std::string>> {
  static constexpr const char* name = "str_list";
  using Stored = std::vector<std::string>;
};
template <> struct KindOf<std::map<std::string, int64_t>> {
  static constexpr const char* name = "int_map";
  using Stored = std::map<std::string, int64_t>;
};
template <> struct KindOf<std::map<std::string, std::string>> {
  static constexpr const char* name = "str_map";
  using Stored = std::map<std::string, std::string>;
};

template <typename T>
OptionField field(const char* name, T SessionOptions::*member, const char* doc) {
  using Stored = typename KindOf<T>::Stored;
  OptionField f;
  f.name = name;
  f.kind = KindOf<T>::name;
  f.doc = doc;
  // set_session_option checked the kind before calling set.
  f.set = [member](SessionOptions& o, const OptionValue& v) { o.*member = static_cast<T>(std::get<Stored>(v)); };
  f.get = [member](const SessionOptions& o) { return OptionValue(static_cast<Stored>(o.*member)); };
  return f;
}

const char* kind_of(const OptionValue& v) {
  static const char* names[] = {"bool", "int", "str", "str_list", "int_map", "str_map"};
  return names[v.index()];
}

}  // namespace

const std::vector<OptionField>& session_option_fields() {
  using O = SessionOptions;
  static const std::vector<OptionField> fields = {
      field("device", &O::device, "cpu, wse, wse2 or wse3"),
      field("num_threads", &O::num_threads, "intra-op threads; 0 = one per core"),
      field("enable_profiling", &O::enable_profiling, "time every node; end_profiling() writes the trace"),
      field("profile_file_prefix", &O::profile_file_prefix, "path prefix of the profiling trace"),
      field("memory_limit_mb", &O::memory_limit_mb,
            "MB a run may hold: refuse a model needing more, fail a run going past it (0 = no limit)"),
      field("run_timeout_ms", &O::run_timeout_ms,
            "deadline of every run whose RunOptions.timeout_ms is 0 (0 = none): DeadlineExceeded"),
      field("max_model_size_mb", &O::max_model_size_mb,
            "refuse a model file or bytes larger than this before parsing (0 = no limit)"),
      field("max_streams", &O::max_streams, "streams open at once on the session (0 = no limit)"),
      field("execution_mode", &O::execution_mode, "sequential or parallel"),
      field("memory_pool", &O::memory_pool, "arena, default or custom"),
      field("enable_memory_reuse", &O::enable_memory_reuse, "reuse a buffer after its last reader"),
      field("optimization_level", &O::optimization_level, "0 none, 1 basic, 2 extended, 3 all"),
      field("disabled_passes", &O::disabled_passes, "pass names to skip"),
      field("optimized_model_path", &O::optimized_model_path, "save the optimised graph (.onnx or .pfm)"),
      field("compile_cache_dir", &O::compile_cache_dir, "cache of optimised graphs"),
      field("artifacts_dir", &O::artifacts_dir, "where devices write generated programs (the wafer's CSL)"),
      field("log_id", &O::log_id, "tag of this session's log lines"),
      field("log_severity_level", &O::log_severity_level, "0 verbose .. 4 fatal; -1 the default"),
      field("log_verbosity_level", &O::log_verbosity_level, "detail of verbose lines"),
      field("free_dimension_overrides", &O::free_dimension_overrides, "symbolic dim name -> size"),
      field("free_dimension_overrides_by_denotation", &O::free_dimension_overrides_by_denotation,
            "dim denotation -> size"),
      field("input_shapes", &O::input_shapes, "input name -> its shape '1,3,224,224' (fixes its free dims)"),
      field("inter_op_num_threads", &O::inter_op_num_threads, "accepted for ORT; ignored (warns)"),
      field("use_deterministic_compute", &O::use_deterministic_compute, "accepted for ORT; ignored (warns)"),
      field("enable_cpu_mem_arena", &O::enable_cpu_mem_arena, "false = memory_pool 'default'"),
      field("config_entries", &O::config_entries, "ORT session config entries"),
  };
  return fields;
}

Status set_session_option(SessionOptions& options, const std::string& name, const OptionValue& value) {
  for (const auto& f : session_option_fields()) {
    if (f.name != name) continue;
    if (f.kind != kind_of(value)) {
      return invalid_argument("SessionOptions.", name, ": expected a value of kind ", f.kind, ", got ", kind_of(value));
    }
    f.set(options, value);
    return Status::OK();
  }
  return invalid_argument("SessionOptions: unknown option '", name, "'");
}

}  // namespace pyflame_rt
