#include "python/src/py_options.h"

#include <pybind11/stl.h>

#include <memory>

#include "session/run_options.h"
#include "session/session_option_fields.h"
#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"

namespace pyflame_rt::py_binding {

namespace {

const OptionField* find_field(const std::string& name) {
  for (const auto& f : session_option_fields()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

OptionValue option_value(const OptionField& f, py::handle v) {
  try {
    if (f.kind == "bool") return v.cast<bool>();
    if (f.kind == "int") {
      if (py::isinstance<py::bool_>(v) || !py::isinstance<py::int_>(v)) throw py::cast_error();
      return v.cast<int64_t>();
    }
    if (f.kind == "str") return std::string(py::str(v));
    if (f.kind == "str_list") return v.cast<std::vector<std::string>>();
    if (f.kind == "int_map") return v.cast<std::map<std::string, int64_t>>();
    if (f.kind == "str_map") return v.cast<std::map<std::string, std::string>>();
  } catch (const py::cast_error&) {
  }
  raise_status(invalid_argument("SessionOptions.", f.name, ": expected a value of kind ", f.kind, ", got ",
                                std::string(py::repr(v))));
}

py::object python_value(const OptionValue& v) {
  return std::visit([](const auto& x) -> py::object { return py::cast(x); }, v);
}

}  // namespace

SessionOptions options_from_dict(const py::dict& d) {
  SessionOptions o;
  for (auto item : d) {
    std::string key = py::str(item.first);
    // Not a SessionOptions field in Python (ONNX Runtime takes it beside the providers): the
    // session passes {provider: {key: value}} under this name.
    if (key == "provider_options") {
      try {
        o.provider_options = item.second.cast<std::map<std::string, std::map<std::string, std::string>>>();
      } catch (const py::cast_error&) {
        raise_status(invalid_argument("provider_options: expected {provider: {key: str}}, got ",
                                      std::string(py::repr(item.second))));
      }
      continue;
    }
    const OptionField* f = find_field(key);
    if (!f) raise_status(invalid_argument("SessionOptions: unknown option '", key, "'"));
    check(set_session_option(o, key, option_value(*f, item.second)));
  }
  return o;
}

void bind_options(py::module_& m) {
  m.def("session_option_fields", [] {
    SessionOptions defaults;
    py::list out;
    for (const auto& f : session_option_fields()) {
      out.append(py::make_tuple(f.name, f.kind, python_value(f.get(defaults)), f.doc));
    }
    return out;
  });
  // ONNX Runtime's RunOptions; pyflame_rt.RunOptions adds the pure-Python attributes.
  py::class_<RunOptions, std::shared_ptr<RunOptions>>(m, "RunOptions", py::dynamic_attr())
      .def(py::init<>())
      .def_property(
          "terminate", [](const RunOptions& r) { return r.terminate.load(); },
          [](RunOptions& r, bool v) { r.terminate = v; })
      .def_property(
          "timeout_ms", [](const RunOptions& r) { return r.timeout_ms; },
          [](RunOptions& r, int64_t v) {
            if (v < 0) raise_status(invalid_argument("RunOptions.timeout_ms: expected >= 0 (0 = no deadline), got ", v));
            r.timeout_ms = v;
          })
      .def_readwrite("logid", &RunOptions::log_id)
      .def_readwrite("log_severity_level", &RunOptions::log_severity_level)
      .def_readwrite("log_verbosity_level", &RunOptions::log_verbosity_level)
      .def("add_run_config_entry",
           [](RunOptions& r, const std::string& key, const std::string& value) { r.config_entries[key] = value; },
           py::arg("key"), py::arg("value"))
      .def(
          "get_run_config_entry",
          [](const RunOptions& r, const std::string& key) {
            auto it = r.config_entries.find(key);
            if (it == r.config_entries.end()) {
              raise_status(invalid_argument("RunOptions: no config entry '", key, "'"));
            }
            return it->second;
          },
          py::arg("key"));
}

}  // namespace pyflame_rt::py_binding
