#include "python/src/py_errors.h"

namespace pyflame_rt::py_binding {

void raise_status(const Status& st) {
  py::object errors = py::module_::import("pyflame_rt.errors");
  py::object cls = errors.attr("exception_for_code")(status_code_name(st.code()));
  PyErr_SetString(cls.ptr(), st.message().c_str());
  throw py::error_already_set();
}

std::string type_name(py::handle obj) { return py::str(py::type::of(obj).attr("__name__")); }

}  // namespace pyflame_rt::py_binding
