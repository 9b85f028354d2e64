// One bind_* function per wrapper file; module.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace pyflame_rt::py_binding {

namespace py = pybind11;

void bind_session(py::module_& m);
void bind_batcher(py::module_& m);
void bind_stream(py::module_& m);
void bind_remote(py::module_& m);
void bind_pipeline(py::module_& m);
void bind_runtime(py::module_& m);
void bind_options(py::module_& m);
void bind_ortvalue(py::module_& m);
void bind_logging(py::module_& m);

}  // namespace pyflame_rt::py_binding
