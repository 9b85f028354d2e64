// Status -> Python exception, at the boundary of the _pyflame_rt extension.
//
//   Tensor t = unwrap(session->run(...));   // raises pyflame_rt.errors.<Kind> on failure
//
// The exception class comes from pyflame_rt.errors, keyed by status_code_name(): the table
// of codes lives in graph/status.cpp only.
#pragma once

#include <pybind11/pybind11.h>

#include "graph/status.h"

namespace pyflame_rt::py_binding {

namespace py = pybind11;

[[noreturn]] void raise_status(const Status& st);

template <typename T>
T unwrap(Expected<T> e) {
  if (!e.ok()) raise_status(e.status());
  return std::move(e).value();
}

// fn() run with the GIL released, its result returned (raise with unwrap afterwards: raising
// needs the GIL). Replaces the `Expected<T> r = Status(); { release; r = ...; }` dance.
template <typename Fn>
auto without_gil(Fn&& fn) {
  py::gil_scoped_release release;
  return fn();
}

inline void check(const Status& st) {
  if (!st.ok()) raise_status(st);
}

// The name of obj's type, for messages ("expected a dict, got list").
std::string type_name(py::handle obj);

}  // namespace pyflame_rt::py_binding
