#include "python/src/py_ortvalue.h"

#include <pybind11/stl.h>

#include <cctype>
#include <cstring>

#include "python/src/py_arrays.h"
#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"

namespace pyflame_rt::py_binding {

namespace {

void check_device(const std::string& device_type, int device_id) {
  std::string d = device_type;
  for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (d != "cpu" || device_id != 0) {
    raise_status(invalid_argument("OrtValue: device '", device_type, "' id ", device_id,
                                  " is not available in this build; expected 'cpu' id 0"));
  }
}

DType dtype_of_element_type(const py::object& element_type) {
  return dtype_of_numpy("element_type", py::dtype::from_args(element_type));
}

}  // namespace

PyOrtValue PyOrtValue::from_numpy(const py::array& a, const std::string& device_type, int device_id) {
  check_device(device_type, device_id);
  return PyOrtValue(Value(tensor_sharing_array("ortvalue_from_numpy", a)));
}

PyOrtValue PyOrtValue::from_shape_and_type(const std::vector<int64_t>& shape, const py::object& element_type,
                                           const std::string& device_type, int device_id) {
  check_device(device_type, device_id);
  for (int64_t d : shape) {
    if (d < 0) raise_status(invalid_argument("ortvalue_from_shape_and_type: shape ", dims_to_string(shape), " has a negative dimension"));
  }
  return PyOrtValue(Value(Tensor(dtype_of_element_type(element_type), shape)));
}

PyOrtValue PyOrtValue::from_pointer(uintptr_t address, const py::object& element_type, const std::vector<int64_t>& shape) {
  if (address == 0) raise_status(invalid_argument("buffer_ptr: expected a non-null address"));
  DType dt = dtype_of_element_type(element_type);
  if (dt == DType::kString) raise_status(invalid_argument("buffer_ptr: string tensors cannot be bound by address"));
  return PyOrtValue(Value(Tensor::wrap(dt, shape, reinterpret_cast<void*>(address), nullptr)));
}

py::object PyOrtValue::numpy() const { return object_from_value(value_); }

std::vector<int64_t> PyOrtValue::shape() const {
  if (value_.is_tensor()) return value_.tensor.dims();
  if (value_.is_map_sequence()) return {static_cast<int64_t>(value_.maps.size())};
  if (value_.is_map()) return {value_.map_keys.numel()};
  if (value_.is_sequence()) return {static_cast<int64_t>(value_.sequence.size())};
  return {};
}

namespace {
// "map(string,tensor(float))", as ONNX Runtime names it.
std::string map_type_name(const Value& m) {
  std::string key = dtype_onnx_name(m.map_keys.dtype());  // "tensor(string)"
  key = key.substr(7, key.size() - 8);
  return "map(" + key + "," + dtype_onnx_name(m.map_values.dtype()) + ")";
}
}  // namespace

std::string PyOrtValue::data_type() const {
  if (value_.is_tensor()) return dtype_onnx_name(value_.tensor.dtype());
  if (value_.is_map()) return map_type_name(value_);
  if (value_.is_map_sequence()) return "seq(" + map_type_name(value_.maps[0]) + ")";
  if (value_.is_sequence()) return "seq(" + dtype_onnx_name(value_.sequence_dtype) + ")";
  return "optional";
}

py::object PyOrtValue::element_type() const {
  DType dt = value_.is_tensor() ? value_.tensor.dtype() : value_.sequence_dtype;
  return numpy_dtype_of(dt).attr("type");
}

uintptr_t PyOrtValue::data_ptr() const {
  if (!value_.is_tensor()) raise_status(invalid_argument("data_ptr(): the OrtValue holds a ", data_type(), ", not a tensor"));
  return reinterpret_cast<uintptr_t>(value_.tensor.raw_data());
}

void PyOrtValue::update_inplace(const py::array& a) {
  if (!value_.is_tensor()) raise_status(invalid_argument("update_inplace: the OrtValue holds a ", data_type(), ", not a tensor"));
  const Tensor& t = value_.tensor;
  DType dt = dtype_of_numpy("update_inplace", a.dtype());
  if (dt != t.dtype() || a.size() != t.numel()) {
    raise_status(invalid_argument("update_inplace: the OrtValue is ", t.summary(), ", the array is ", dtype_name(dt), "[",
                                  a.size(), " elements]"));
  }
  if (dt == DType::kString) raise_status(not_implemented("update_inplace of string tensors"));
  py::array c = py::array::ensure(a, py::array::c_style);
  if (t.nbytes()) std::memcpy(const_cast<void*>(t.raw_data()), c.data(), t.nbytes());
}

void bind_ortvalue(py::module_& m) {
  py::class_<PyOrtValue>(m, "OrtValue")
      .def_static("ortvalue_from_numpy", &PyOrtValue::from_numpy, py::arg("numpy_obj"), py::arg("device_type") = "cpu",
                  py::arg("device_id") = 0)
      .def_static("ortvalue_from_shape_and_type", &PyOrtValue::from_shape_and_type, py::arg("shape"),
                  py::arg("element_type"), py::arg("device_type") = "cpu", py::arg("device_id") = 0)
      .def_static("from_pointer", &PyOrtValue::from_pointer, py::arg("address"), py::arg("element_type"),
                  py::arg("shape"))
      .def("numpy", &PyOrtValue::numpy)
      .def("shape", &PyOrtValue::shape)
      .def("data_type", &PyOrtValue::data_type)
      .def("element_type", &PyOrtValue::element_type)
      .def("device_name", &PyOrtValue::device_name)
      .def("data_ptr", &PyOrtValue::data_ptr)
      .def("update_inplace", &PyOrtValue::update_inplace, py::arg("np_arr"))
      .def("is_tensor", &PyOrtValue::is_tensor)
      .def("has_value", &PyOrtValue::has_value);
}

}  // namespace pyflame_rt::py_binding
