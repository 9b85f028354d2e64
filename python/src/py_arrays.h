// numpy <-> Tensor/Value conversion for the _pyflame_rt extension.
//
//   std::vector<py::object> keep;                       // arrays the tensors wrap
//   Tensor t = tensor_from_array("x", obj, keep);        // no copy for contiguous arrays
//   py::object y = object_from_value(result);            // ndarray, list (sequence)
//
// Numeric arrays are wrapped without copying (kept alive by `keep` for the run); strings are
// converted. Outputs are copied into new arrays that numpy owns.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "session/inference_session.h"
#include "graph/value.h"

namespace pyflame_rt::py_binding {

namespace py = pybind11;

// The DType of a numpy dtype; InvalidArgument naming `what` when it has none.
DType dtype_of_numpy(const std::string& what, const py::dtype& dt);
// The numpy dtype of a DType (bfloat16 as uint16: numpy has none); NotImplemented otherwise.
py::dtype numpy_dtype_of(DType dtype);

// Wraps (no copy) or, for strings and non-contiguous arrays, converts an array to a Tensor.
// `keep` collects the contiguous arrays that must outlive the run.
Tensor tensor_from_array(const std::string& name, py::handle obj, std::vector<py::object>& keep);
// A Tensor wrapping the array's memory that keeps the array alive itself (released with
// the GIL held): for tensors that outlive the call (OrtValue, bound inputs, async runs).
Tensor tensor_sharing_array(const std::string& name, const py::array& a);

py::object array_from_tensor(const Tensor& t);
// A tensor as an ndarray, a sequence as a list of ndarrays, an absent optional as None.
py::object object_from_value(const Value& v);
py::list arrays_of(const std::vector<Tensor>& outs);

py::list shape_to_python(const Shape& s);
// [(name, shape, "tensor(float)")] for NodeArg.
py::list infos_to_python(const std::vector<TensorInfo>& infos);

}  // namespace pyflame_rt::py_binding
