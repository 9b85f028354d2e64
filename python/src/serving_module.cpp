// The _pyflame_rt_serving extension: the model servers of net/ (KServe v2 over HTTP and gRPC,
// the ZeroMQ listener). pyflame_rt.serving imports it on first use, so `import pyflame_rt`
// loads neither gRPC nor ZeroMQ nor their dozens of shared libraries.
//
// It is linked against _pyflame_rt (which the package has already loaded), not against the
// runtime's static libraries: one copy of the runtime per process, so the actor system, the
// logger, custom ops and the native sessions handed over from _pyflame_rt are the same ones.
#include <pybind11/pybind11.h>

#include "python/src/py_serving.h"
#include "python/src/py_session.h"

namespace py = pybind11;

PYBIND11_MODULE(_pyflame_rt_serving, m) {
  m.doc() = "PyFlameRT model servers (use pyflame_rt.serving, not this module)";
  // A native Session is _pyflame_rt's type: pybind11 shares registered types between the
  // modules of one build, so the cast finds it.
  pyflame_rt::register_serving(m, [](py::handle h) { return h.cast<const pyflame_rt::py_binding::PySession&>().shared(); });
}
