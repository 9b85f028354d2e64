#include "python/src/py_arrays.h"

#include <cstring>
#include <memory>
#include <optional>

#include "python/src/py_errors.h"

namespace pyflame_rt::py_binding {

DType dtype_of_numpy(const std::string& what, const py::dtype& dt) {
  char kind = dt.kind();
  auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::kFloat32;
  if (kind == 'f' && size == 8) return DType::kFloat64;
  if (kind == 'f' && size == 2) return DType::kFloat16;
  if (kind == 'i' && size == 1) return DType::kInt8;
  if (kind == 'i' && size == 2) return DType::kInt16;
  if (kind == 'i' && size == 4) return DType::kInt32;
  if (kind == 'i' && size == 8) return DType::kInt64;
  if (kind == 'u' && size == 1) return DType::kUInt8;
  if (kind == 'u' && size == 2) return DType::kUInt16;
  if (kind == 'u' && size == 4) return DType::kUInt32;
  if (kind == 'u' && size == 8) return DType::kUInt64;
  if (kind == 'b') return DType::kBool;
  if (kind == 'U' || kind == 'S' || kind == 'O') return DType::kString;
  raise_status(invalid_argument(what, ": numpy dtype '", std::string(py::str(py::handle(dt))), "' is not supported"));
}

py::dtype numpy_dtype_of(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return py::dtype("float32");
    case DType::kFloat64: return py::dtype("float64");
    case DType::kFloat16: return py::dtype("float16");
    case DType::kInt8: return py::dtype("int8");
    case DType::kInt16: return py::dtype("int16");
    case DType::kInt32: return py::dtype("int32");
    case DType::kInt64: return py::dtype("int64");
    case DType::kUInt8: return py::dtype("uint8");
    case DType::kUInt16: return py::dtype("uint16");
    case DType::kUInt32: return py::dtype("uint32");
    case DType::kUInt64: return py::dtype("uint64");
    case DType::kBool: return py::dtype("bool");
    case DType::kBFloat16: return py::dtype("uint16");  // numpy has no bfloat16: raw bits
    case DType::kString: return py::dtype("O");
    default: raise_status(not_implemented("dtype ", dtype_name(dtype), " has no numpy equivalent"));
  }
}

namespace {

py::array as_array(const std::string& name, py::handle obj) {
  py::array a = py::array::ensure(obj);
  if (!a) raise_status(invalid_argument("input '", name, "': expected a numpy array, got ", type_name(obj)));
  return a;
}

Tensor string_tensor(const py::array& a, const Dims& dims) {
  Tensor t(DType::kString, dims);
  py::list flat = a.attr("reshape")(-1).attr("tolist")();
  auto* s = t.data<std::string>();
  for (size_t i = 0; i < flat.size(); ++i) {
    py::handle item = flat[i];
    if (!py::isinstance<py::str>(item) && !py::isinstance<py::bytes>(item)) {
      raise_status(invalid_argument("an object array must hold str or bytes, element ", i, " is a ", type_name(item)));
    }
    s[i] = py::isinstance<py::bytes>(item) ? std::string(py::bytes(py::reinterpret_borrow<py::object>(item)))
                                          : std::string(py::str(item));
  }
  return t;
}

// A non-contiguous view (a stride-0 broadcast, say) is copied: one that cannot be allocated
// is an error naming the input, not a null buffer read later (every path that takes arrays:
// run, OrtValue, run_async, IOBinding, streams, frames).
py::array contiguous(const std::string& name, const py::array& a, const Dims& dims) {
  py::array c = py::array::ensure(a, py::array::c_style);
  if (!c) {
    PyErr_Clear();
    raise_status(make_status(StatusCode::kResourceExhausted, "input '", name, "': the ", dims_to_string(dims),
                             " array is not contiguous and a contiguous copy cannot be allocated"));
  }
  return c;
}

// Foreign byte order ('>f4' on a little-endian host) must be read by value, never as native
// bytes: a native copy, or nothing when the array is already native.
std::optional<Tensor> native_order_copy(const py::array& c, DType dt, const Dims& dims) {
  constexpr char kForeign = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '>' : '<';
  if (py::dtype(c.dtype()).byteorder() != kForeign || c.itemsize() <= 1) return std::nullopt;
  Tensor t(dt, dims);
  const auto* src = static_cast<const unsigned char*>(c.data());
  auto* dst = static_cast<unsigned char*>(t.raw_data());
  const size_t item = static_cast<size_t>(c.itemsize());
  for (size_t i = 0; i < t.nbytes(); i += item) {
    for (size_t k = 0; k < item; ++k) dst[i + k] = src[i + item - 1 - k];
  }
  return t;
}

}  // namespace

Tensor tensor_from_array(const std::string& name, py::handle obj, std::vector<py::object>& keep) {
  py::array a = as_array(name, obj);
  DType dt = dtype_of_numpy("input '" + name + "'", a.dtype());
  Dims dims(a.shape(), a.shape() + a.ndim());
  if (dt == DType::kString) return string_tensor(a, dims);
  py::array c = contiguous(name, a, dims);
  if (auto swapped = native_order_copy(c, dt, dims)) return std::move(*swapped);
  keep.push_back(c);
  return Tensor::wrap(dt, dims, const_cast<void*>(c.data()), nullptr);
}

Tensor tensor_sharing_array(const std::string& name, const py::array& a) {
  DType dt = dtype_of_numpy("'" + name + "'", a.dtype());
  Dims dims(a.shape(), a.shape() + a.ndim());
  if (dt == DType::kString) return string_tensor(a, dims);
  py::array c = contiguous(name, a, dims);
  // A byte-swapped copy cannot share the caller's buffer (an IOBinding input read by value).
  if (auto swapped = native_order_copy(c, dt, dims)) return std::move(*swapped);
  // The last owner may be a C++ thread: it takes the GIL to drop the array.
  auto* held = new py::object(c);
  std::shared_ptr<void> keep(held, [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return Tensor::wrap(dt, dims, const_cast<void*>(c.data()), std::move(keep));
}

namespace {

// pybind11's py::array(dtype, shape) computes C strides (the item size times the trailing dims)
// in signed arithmetic before numpy sees the shape: an empty output of [0, 2^62, 4] overflowed
// there (UBSan, make sanitize-asan-python), and numpy refuses such shapes anyway.
bool c_strides_fit(const std::vector<py::ssize_t>& shape, py::ssize_t itemsize) {
  py::ssize_t stride = itemsize;
  for (size_t i = shape.size(); i-- > 1;) {
    if (__builtin_mul_overflow(stride, shape[i], &stride)) return false;
  }
  return true;
}

}  // namespace

py::object array_from_tensor(const Tensor& t) {
  std::vector<py::ssize_t> shape(t.dims().begin(), t.dims().end());
  py::dtype dt = t.dtype() == DType::kString ? py::dtype("O") : numpy_dtype_of(t.dtype());
  if (!c_strides_fit(shape, dt.itemsize())) {
    raise_status(make_status(StatusCode::kResourceExhausted, "a ", dtype_name(t.dtype()), dims_to_string(t.dims()),
                             " tensor cannot be made a numpy array: its strides (", dt.itemsize(),
                             " bytes times the trailing dims) pass the largest signed size"));
  }
  if (t.dtype() == DType::kString) {
    py::array out(dt, shape);
    auto** objs = static_cast<PyObject**>(out.mutable_data());
    const auto* s = t.data<std::string>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      py::str v(s[i]);
      objs[i] = v.release().ptr();
    }
    return std::move(out);
  }
  // numpy refuses shapes whose non-zero dims overflow its size even when one dim is 0 (an
  // empty output of [0, 2^62, 2^62] from a hostile model): our error, not numpy's ValueError.
  py::array out;
  try {
    out = py::array(dt, shape);
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_ValueError) && !e.matches(PyExc_MemoryError)) throw;
    raise_status(make_status(StatusCode::kResourceExhausted, "a ", dtype_name(t.dtype()), dims_to_string(t.dims()),
                             " tensor cannot be made a numpy array: ", e.what()));
  }
  if (t.nbytes()) std::memcpy(out.mutable_data(), t.raw_data(), t.nbytes());
  return std::move(out);
}

namespace {

// A map as ONNX Runtime returns it: a dict of Python scalars (str or int keys; float, int or
// str values), in the map's key order.
py::dict dict_from_map(const Value& m) {
  py::dict out;
  const Tensor& k = m.map_keys;
  const Tensor& v = m.map_values;
  for (int64_t i = 0; i < k.numel() && i < v.numel(); ++i) {
    py::object key = k.dtype() == DType::kString ? py::object(py::str(k.data<std::string>()[i]))
                                                 : py::object(py::int_(k.value_as_int64(i)));
    py::object value;
    if (v.dtype() == DType::kString) value = py::str(v.data<std::string>()[i]);
    else if (v.dtype() == DType::kFloat32 || v.dtype() == DType::kFloat64) value = py::float_(v.value_as_double(i));
    else value = py::int_(v.value_as_int64(i));
    out[key] = value;
  }
  return out;
}

}  // namespace

py::object object_from_value(const Value& v) {
  if (v.is_tensor()) return array_from_tensor(v.tensor);
  if (v.is_map()) return dict_from_map(v);
  if (v.is_map_sequence()) {
    py::list items;
    for (const auto& m : v.maps) items.append(dict_from_map(m));
    return std::move(items);
  }
  if (v.is_sequence()) {
    py::list items;
    for (const auto& t : v.sequence) items.append(array_from_tensor(t));
    return std::move(items);
  }
  return py::none();
}

py::list arrays_of(const std::vector<Tensor>& outs) {
  py::list out;
  for (const auto& t : outs) out.append(array_from_tensor(t));
  return out;
}

py::list shape_to_python(const Shape& s) {
  py::list out;
  for (const Dim& d : s.dims) {
    if (d.known()) out.append(d.value);
    else if (!d.symbol.empty()) out.append(d.symbol);
    else out.append(py::none());
  }
  return out;
}

py::list infos_to_python(const std::vector<TensorInfo>& infos) {
  py::list out;
  for (const auto& i : infos) {
    py::object shape = i.shape.rank_known ? py::object(shape_to_python(i.shape)) : py::object(py::none());
    out.append(py::make_tuple(i.name, shape, i.type()));
  }
  return out;
}

}  // namespace pyflame_rt::py_binding
