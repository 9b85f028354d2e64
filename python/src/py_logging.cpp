// The process logger (graph/logging.h) seen from Python: ORT's set_default_logger_severity /
// _verbosity, and log() so Python code writes to the same logger as the core.
#include <algorithm>

#include "graph/logging.h"
#include "python/src/py_bindings.h"

namespace pyflame_rt::py_binding {

void bind_logging(py::module_& m) {
  m.def("set_default_logger_severity", &set_default_log_severity, py::arg("severity"));
  m.def("get_default_logger_severity", &default_log_severity);
  m.def("set_default_logger_verbosity", &set_default_log_verbosity, py::arg("verbosity"));
  m.def("get_default_logger_verbosity", &default_log_verbosity);
  m.def(
      "log",
      [](int severity, const std::string& log_id, const std::string& message, int log_severity_level) {
        LogScope scope{log_id, log_severity_level, 0};
        log_message(static_cast<LogSeverity>(std::clamp(severity, 0, 4)), scope, message);
      },
      py::arg("severity"), py::arg("log_id"), py::arg("message"), py::arg("log_severity_level") = -1);
}

}  // namespace pyflame_rt::py_binding
