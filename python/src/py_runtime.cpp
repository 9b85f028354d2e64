// Process-wide functions: the actor runtime's size and shutdown, the version, status codes.
#include <pybind11/stl.h>

#include "actors/actor_runtime.h"
#include "graph/status_codes.h"
#include "devices/device_registry.h"
#include "devices/random_seed.h"
#include "devices/run_interrupt.h"
#include "session/limit_counters.h"
#include "graph/version.h"
#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"

namespace pyflame_rt::py_binding {

void bind_runtime(py::module_& m) {
  m.def("configure_actor_runtime", [](int threads) { check(configure_actor_runtime(threads)); }, py::arg("threads"));
  m.def("actor_runtime_threads", &actor_runtime_threads);
  m.def("available_providers", [] { return DeviceRegistry::global().available_providers(); });
  m.def("shutdown", [] {
    py::gil_scoped_release release;
    shutdown_actor_runtime();
  });
  m.def("shutdown_within", [](int64_t grace_ms) {
    py::gil_scoped_release release;
    return shutdown_actor_runtime_within(std::chrono::milliseconds(grace_ms));
  }, py::arg("grace_ms"));
  // At interpreter exit: every run still in progress (a batch, a pipeline stage, a served
  // frame) stops at its next check, so the bounded wait is for kernels that do not check.
  m.def("shutdown_at_exit", [](int64_t grace_ms) {
    py::gil_scoped_release release;
    stop_all_runs("the interpreter is exiting");
    size_t left = shutdown_actor_runtime_within(std::chrono::milliseconds(grace_ms));
    resume_all_runs();  // an atexit hook that runs after this one may still run a model
    return left;
  }, py::arg("grace_ms"));
  m.def("status_code_names", &status_code_names);
  // Every limit's count over the process (sessions' runs, streams, refused models).
  m.def("limit_counters", [] { return process_limit_counters().snapshot(); });
  m.def("set_seed", [](int64_t seed) { set_random_seed(static_cast<uint64_t>(seed)); }, py::arg("seed"));
  m.def("build_info", &build_info);
  m.attr("__version__") = version_string();
}

}  // namespace pyflame_rt::py_binding
