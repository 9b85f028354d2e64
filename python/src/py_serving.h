// The model server's Python binding (pyflame_rt.serving), in the _pyflame_rt_serving extension.
#pragma once

#include <functional>
#include <memory>

#include <pybind11/pybind11.h>

#include "session/inference_session.h"

namespace pyflame_rt {

// `session_of` turns a native Session object (bindings.cpp's) into the C++ session it holds.
void register_serving(pybind11::module_& m,
                      std::function<std::shared_ptr<const InferenceSession>(pybind11::handle)> session_of);

}  // namespace pyflame_rt
