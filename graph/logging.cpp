#include "graph/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>

namespace pyflame_rt {

namespace {

std::atomic<int> g_severity{static_cast<int>(LogSeverity::kWarning)};
std::atomic<int> g_verbosity{0};
std::atomic<bool> g_to_stderr{true};

struct Sinks {
  std::mutex mu;
  uint64_t next = 1;
  std::map<uint64_t, LogSink> sinks;
};
Sinks& sinks() {
  static Sinks* s = new Sinks();  // never destroyed: threads may log during static destruction
  return *s;
}

spdlog::level::level_enum spdlog_level(LogSeverity s) {
  switch (s) {
    case LogSeverity::kVerbose: return spdlog::level::debug;
    case LogSeverity::kInfo: return spdlog::level::info;
    case LogSeverity::kWarning: return spdlog::level::warn;
    case LogSeverity::kError: return spdlog::level::err;
    case LogSeverity::kFatal: return spdlog::level::critical;
  }
  return spdlog::level::info;
}

// Unregistered from spdlog's registry: a user's spdlog::drop_all() cannot take it away.
std::shared_ptr<spdlog::logger> stderr_logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>("pyflame_rt", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%Y-%m-%d %H:%M:%S.%e %v");
    l->set_level(spdlog::level::trace);  // the threshold is ours (per scope), not spdlog's
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return logger;
}

int clamp_severity(int s) { return std::clamp(s, 0, 4); }

}  // namespace

const char* log_severity_letter(LogSeverity severity) {
  static const char* letters[] = {"V", "I", "W", "E", "F"};
  return letters[clamp_severity(static_cast<int>(severity))];
}

int set_default_log_severity(int severity) {
  g_severity = clamp_severity(severity);
  return g_severity;
}
int default_log_severity() { return g_severity; }
void set_default_log_verbosity(int verbosity) { g_verbosity = std::max(0, verbosity); }
int default_log_verbosity() { return g_verbosity; }
void set_log_to_stderr(bool enabled) { g_to_stderr = enabled; }

bool log_enabled(LogSeverity severity, const LogScope& scope) {
  int threshold = scope.severity >= 0 ? clamp_severity(scope.severity) : g_severity.load();
  return static_cast<int>(severity) >= threshold;
}

void log_message(LogSeverity severity, const LogScope& scope, const std::string& message, int verbose_level) {
  if (!log_enabled(severity, scope)) return;
  if (severity == LogSeverity::kVerbose && std::max(scope.verbosity, g_verbosity.load()) < verbose_level) return;
  if (g_to_stderr) {
    stderr_logger()->log(spdlog_level(severity), "[{}:pyflame_rt:{}] {}", log_severity_letter(severity), scope.id,
                         message);
  }
  Sinks& s = sinks();
  std::lock_guard<std::mutex> lock(s.mu);
  for (const auto& [handle, sink] : s.sinks) sink(severity, scope.id, message);
}

uint64_t add_log_sink(LogSink sink) {
  Sinks& s = sinks();
  std::lock_guard<std::mutex> lock(s.mu);
  uint64_t handle = s.next++;
  s.sinks[handle] = std::move(sink);
  return handle;
}

void remove_log_sink(uint64_t handle) {
  Sinks& s = sinks();
  std::lock_guard<std::mutex> lock(s.mu);
  s.sinks.erase(handle);
}

}  // namespace pyflame_rt
