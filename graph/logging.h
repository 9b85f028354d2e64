// One logger for the C++ core, the CLI and Python (spdlog underneath; this header stays free
// of it). Severities and their numbers are ONNX Runtime's log_severity_level:
// 0 verbose, 1 info, 2 warning (the default), 3 error, 4 fatal.
//
//   LogScope scope{"session-3", /*severity=*/-1};     // -1: the process default
//   log_at(LogSeverity::kWarning, scope, "node 'conv1' runs on the reference kernel");
//   set_default_log_severity(0);                        // everything, from now on
//
// Lines go to stderr as "2026-11-30 03:12:00.123 [W:pyflame_rt:session-3] message", like
// ORT's "[W:onnxruntime:logid, ...]". Sinks added with add_log_sink() see every line written
// (the CLI, tests, Python).
#pragma once

#include <cstdint>
#include <functional>
#include <sstream>
#include <string>

namespace pyflame_rt {

enum class LogSeverity { kVerbose = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

const char* log_severity_letter(LogSeverity severity);  // "V", "I", "W", "E", "F"

// Who logs and how much it wants written: a session (its logid and log_severity_level) or
// a run (RunOptions' logid and levels). severity < 0 means the process default.
struct LogScope {
  std::string id;
  int severity = -1;
  int verbosity = 0;  // verbose lines need verbosity >= their level (ORT's VLOG)
};

// The process defaults (ORT's set_default_logger_severity / _verbosity). Values outside 0..4
// are clamped; the severity is returned so callers can report what took effect.
int set_default_log_severity(int severity);
int default_log_severity();
void set_default_log_verbosity(int verbosity);
int default_log_verbosity();

// True when a line of `severity` from `scope` would be written.
bool log_enabled(LogSeverity severity, const LogScope& scope = {});
// Writes `message` when log_enabled(); verbose lines also need scope's (or the default)
// verbosity >= verbose_level.
void log_message(LogSeverity severity, const LogScope& scope, const std::string& message, int verbose_level = 0);

template <typename... Args>
void log_at(LogSeverity severity, const LogScope& scope, Args&&... args) {
  if (!log_enabled(severity, scope)) return;
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  log_message(severity, scope, os.str());
}

// A receiver of every written line (after the threshold check). Returns a handle for
// remove_log_sink. Sinks run on the logging thread, under the logger's lock: keep them short.
using LogSink = std::function<void(LogSeverity severity, const std::string& log_id, const std::string& message)>;
uint64_t add_log_sink(LogSink sink);
void remove_log_sink(uint64_t handle);
// false: lines reach the added sinks only, not stderr (an embedding that logs elsewhere).
void set_log_to_stderr(bool enabled);

}  // namespace pyflame_rt
