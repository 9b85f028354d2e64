#include "python/src/py_errors.h"

namespace pyflame_rt::py_binding {

void raise_status(const Status& st) {
  py::object errors = py::module_::import("pyflame_rt.errors");
  py::object cls = errors.attr("exception_for_code")(status_code_name(st.code()));
  // Messages quote names from the model, which may not be UTF-8 (a crafted tensor name):
  // PyErr_SetString would then raise the exception with no message at all.
  const std::string& m = st.message();
  py::object text = py::reinterpret_steal<py::object>(
      PyUnicode_DecodeUTF8(m.data(), static_cast<Py_ssize_t>(m.size()), "backslashreplace"));
  if (!text) {
    PyErr_Clear();
    text = py::str("(the message could not be decoded)");
  }
  PyErr_SetObject(cls.ptr(), text.ptr());
  throw py::error_already_set();
}

std::string type_name(py::handle obj) { return py::str(py::type::of(obj).attr("__name__")); }

}  // namespace pyflame_rt::py_binding
