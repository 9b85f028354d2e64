// Adds register_custom_op / unregister_custom_op / custom_op_names / load_custom_ops_library
// to the _pyflame_rt module (see custom_op_bindings.cpp).
#pragma once

#include <pybind11/pybind11.h>

namespace pyflame_rt {

void bind_custom_ops(pybind11::module_& m);

}  // namespace pyflame_rt
