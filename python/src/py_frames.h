// Frames (name -> tensor maps that flow through pipelines and remote stages) and Python
// functions used as stages.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "actors/pipeline.h"

namespace pyflame_rt::py_binding {

namespace py = pybind11;

py::dict frame_to_python(const Frame& frame);
// Frames outlive the call that made them: every tensor owns its memory.
Frame frame_from_python(const py::handle& obj, const std::string& what);
// A stage that calls `fn(frame) -> frame` with the GIL held.
StageFn python_stage(const std::string& stage, py::object fn);

}  // namespace pyflame_rt::py_binding
