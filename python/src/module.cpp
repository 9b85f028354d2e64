// The _pyflame_rt extension: pybind11 wrappers over the public C++ API, one file per wrapped
// class (py_*.cpp). The ONNX-Runtime-shaped Python surface lives in pyflame_rt/*.py.
//
// Status codes become the exception classes of pyflame_rt.errors (py_errors.h). Input arrays
// are wrapped without copying for the duration of a run; the GIL is released while it runs.
#include <pybind11/pybind11.h>

#include "python/src/py_bindings.h"
#include "python/src/py_custom_ops.h"
#include "python/src/py_serving.h"
#include "python/src/py_session.h"

namespace py = pybind11;

PYBIND11_MODULE(_pyflame_rt, m) {
  using namespace pyflame_rt::py_binding;
  m.doc() = "PyFlameRT native core (use the pyflame_rt package, not this module)";
  bind_options(m);
  bind_logging(m);
  bind_ortvalue(m);
  bind_session(m);
  bind_batcher(m);
  bind_stream(m);
  bind_remote(m);
  bind_pipeline(m);
  bind_runtime(m);
  pyflame_rt::bind_custom_ops(m);
  pyflame_rt::register_serving(m, [](py::handle h) { return h.cast<const PySession&>().shared(); });
}
