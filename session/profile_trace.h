// Profiling traces in ONNX Runtime's format: a JSON list of Chrome-trace "X" events,
//   {"cat": "Session"|"Node", "name": ..., "ph": "X", "ts": us, "dur": us, "pid": ..., "tid": ...,
//    "args": {"op_name": "Conv", "provider": "CPUExecutionProvider"}}
// with integer microseconds from the start of profiling, readable by chrome://tracing,
// Perfetto and ORT's own trace tools.
//
//   std::vector<TraceEvent> events{{"Session", "session_initialization", 0, 1520, {}}};
//   ASSIGN_OR_RETURN(std::string path, write_profile_trace("prof", events));
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graph/status.h"

namespace pyflame_rt {

struct TraceEvent {
  std::string cat;   // "Session" or "Node"
  std::string name;  // "model_run", "conv1_kernel_time", ...
  double ts_us = 0;  // from the start of profiling
  double dur_us = 0;
  std::map<std::string, std::string> args;
};

// Writes the events to "<prefix>_<YYYY-MM-DD_HH-MM-SS>_<pid>_<n>.json" (n counts the traces
// this process wrote, so two calls in the same second never share a file) and returns the path.
Expected<std::string> write_profile_trace(const std::string& prefix, const std::vector<TraceEvent>& events);

}  // namespace pyflame_rt
