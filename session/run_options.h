// RunOptions: per-run settings of InferenceSession::run (ONNX Runtime's RunOptions).
//
//   RunOptions ro;
//   ro.log_id = "request-17";
//   std::thread([&] { session->run({}, feeds, ro); }).detach();
//   ro.terminate = true;   // the run stops before its next node with kFail
//
// One RunOptions may serve several runs at once: terminate stops all of them.
#pragma once

#include <atomic>
#include <map>
#include <string>

namespace pyflame_rt {

struct RunOptions {
  // Set from any thread to cancel the runs using these options: each stops before its next
  // node (and between Loop/Scan iterations) and fails with kFail.
  std::atomic<bool> terminate{false};
  // The run's deadline, counted from the start of run(): checked before each node and each
  // Loop/Scan iteration; past it the run fails with kDeadlineExceeded. 0 = none.
  int64_t timeout_ms = 0;
  std::string log_id;           // tag of this run's log lines (after the session's)
  int log_severity_level = -1;  // 0 verbose .. 4 fatal; -1: the session's
  int log_verbosity_level = 0;
  std::map<std::string, std::string> config_entries;  // add_run_config_entry

  RunOptions() = default;
  RunOptions(const RunOptions& o)
      : terminate(o.terminate.load()), timeout_ms(o.timeout_ms), log_id(o.log_id), log_severity_level(o.log_severity_level),
        log_verbosity_level(o.log_verbosity_level), config_entries(o.config_entries) {}
  RunOptions& operator=(const RunOptions& o) {
    terminate = o.terminate.load();
    timeout_ms = o.timeout_ms;
    log_id = o.log_id;
    log_severity_level = o.log_severity_level;
    log_verbosity_level = o.log_verbosity_level;
    config_entries = o.config_entries;
    return *this;
  }
};

}  // namespace pyflame_rt
