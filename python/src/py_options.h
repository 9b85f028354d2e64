// Python dicts -> the option structs of the C++ API, through the field table of
// session/session_option_fields.h (Python's SessionOptions reads names, kinds and defaults
// from the same table: session_option_fields()).
#pragma once

#include <pybind11/pybind11.h>

#include "session/session_options.h"

namespace pyflame_rt::py_binding {

namespace py = pybind11;

// {field name: value} as produced by pyflame_rt.SessionOptions.to_native().
SessionOptions options_from_dict(const py::dict& d);

}  // namespace pyflame_rt::py_binding
