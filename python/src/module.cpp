// The _pyflame_rt extension: pybind11 wrappers over the public C++ API, one file per wrapped
// class (py_*.cpp). The ONNX-Runtime-shaped Python surface lives in pyflame_rt/*.py.
//
// The servers live in a second extension, _pyflame_rt_serving, linked against this one.
//
// Status codes become the exception classes of pyflame_rt.errors (py_errors.h). Input arrays
// are wrapped without copying for the duration of a run; the GIL is released while it runs.
#include <pybind11/pybind11.h>

#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"
#include "python/src/py_custom_ops.h"
#include "python/src/py_session.h"

namespace py = pybind11;

PYBIND11_MODULE(_pyflame_rt, m) {
  using namespace pyflame_rt::py_binding;
  m.doc() = "PyFlameRT native core (use the pyflame_rt package, not this module)";
  // Exceptions that are not ours (a pybind11 cast of a user's value, an allocation, a library
  // throwing) reach users as pyflame_rt errors, never as bare RuntimeError/MemoryError.
  // Python errors already set and pybind11's own Python exception types are left to pybind11.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const py::error_already_set&) {
      throw;
    } catch (const py::cast_error& e) {  // a builtin_exception too: before the next handler
      pyflame_rt::py_binding::raise_status(pyflame_rt::invalid_argument("argument of the wrong type: ", e.what()));
    } catch (const py::builtin_exception&) {
      throw;
    } catch (const std::bad_alloc&) {
      pyflame_rt::py_binding::raise_status(pyflame_rt::make_status(pyflame_rt::StatusCode::kResourceExhausted, "out of memory"));
    } catch (const std::exception& e) {
      pyflame_rt::py_binding::raise_status(pyflame_rt::make_status(pyflame_rt::StatusCode::kFail, "internal error: ", e.what()));
    }
  });
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
  // The model servers (HTTP, gRPC, ZeroMQ) are in _pyflame_rt_serving (serving_module.cpp),
  // loaded by pyflame_rt.serving on first use: importing this module does not load gRPC.
}
