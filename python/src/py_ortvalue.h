// OrtValue: a tensor (or sequence) held by the runtime, ONNX Runtime's handle for data that
// stays on the engine's side between runs (run_with_ort_values, IOBinding).
//
//   v = OrtValue.ortvalue_from_numpy(x)   # shares x's memory (no copy)
//   v.numpy(), v.shape(), v.data_type(), v.data_ptr(), v.update_inplace(y)
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "graph/value.h"

namespace pyflame_rt::py_binding {

namespace py = pybind11;

class PyOrtValue {
 public:
  explicit PyOrtValue(Value v) : value_(std::move(v)) {}

  // Wraps the array's memory (the OrtValue keeps the array alive): writes through either show
  // in both, as in ONNX Runtime on the CPU.
  static PyOrtValue from_numpy(const py::array& a, const std::string& device_type, int device_id);
  // A zero-filled tensor owned by the OrtValue.
  static PyOrtValue from_shape_and_type(const std::vector<int64_t>& shape, const py::object& element_type,
                                        const std::string& device_type, int device_id);
  // Wraps memory at `address` that the caller keeps alive (IOBinding.bind_input/bind_output
  // with a buffer pointer).
  static PyOrtValue from_pointer(uintptr_t address, const py::object& element_type, const std::vector<int64_t>& shape);

  py::object numpy() const;  // a copy (ndarray; a list of them for a sequence)
  std::vector<int64_t> shape() const;
  std::string data_type() const;  // "tensor(float)", "seq(tensor(float))"
  py::object element_type() const;  // numpy scalar type
  std::string device_name() const { return "cpu"; }
  uintptr_t data_ptr() const;
  // Copies the array into this value's buffer (same dtype and element count).
  void update_inplace(const py::array& a);
  bool is_tensor() const { return value_.is_tensor(); }
  bool has_value() const { return !value_.is_none(); }
  const Value& value() const { return value_; }

 private:
  Value value_;
};

}  // namespace pyflame_rt::py_binding
