// Custom ops from Python: a Python function (numpy in, numpy out) registered as the kernel of
// (domain, op_type), and custom-op shared libraries loaded by path (devices/custom_ops.h).
//
// The kernel runs on whichever thread runs the node, with the GIL released by run(): it takes
// the GIL, copies the inputs into new numpy arrays (the function may keep them), calls
// fn(*inputs, **attributes) and copies the returned arrays into the node's outputs.
#include "python/src/py_custom_ops.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>

#include "devices/custom_ops.h"

#include "python/src/py_errors.h"

namespace py = pybind11;

namespace pyflame_rt {
namespace {

// Owns the Python function; drops it under the GIL, or leaks it once the interpreter is gone.
struct PythonKernel {
  py::object fn;
  ~PythonKernel() {
    if (Py_IsInitialized()) {
      py::gil_scoped_acquire gil;
      fn = py::object();
    } else {
      fn.release();
    }
  }
};

py::object attribute_to_python(const Attribute& a) {
  switch (a.kind) {
    case AttrKind::kInt: return py::int_(a.i);
    case AttrKind::kFloat: return py::float_(a.f);
    case AttrKind::kString: return py::str(a.s);
    case AttrKind::kInts: return py::cast(a.ints);
    case AttrKind::kFloats: return py::cast(a.floats);
    case AttrKind::kStrings: return py::cast(a.strings);
    default: return py::none();  // tensors and graphs are not passed to Python kernels
  }
}

Expected<py::array> tensor_to_array(const Tensor& t, size_t index) {
  if (t.dtype() == DType::kString || t.dtype() == DType::kBFloat16) {
    return not_implemented("input ", index, ": ", dtype_name(t.dtype()), " tensors are not passed to Python kernels");
  }
  std::vector<py::ssize_t> shape(t.dims().begin(), t.dims().end());
  py::array a(py::dtype(dtype_name(t.dtype())), shape);
  if (t.nbytes()) std::memcpy(a.mutable_data(), t.raw_data(), t.nbytes());
  return a;
}

Expected<Tensor> array_to_tensor(py::handle obj, size_t index) {
  py::array a = py::array::ensure(obj, py::array::c_style);
  if (!a) return invalid_argument("output ", index, ": expected a numpy array, got ",
                                  std::string(py::str(py::type::of(obj).attr("__name__"))));
  std::string name = py::str(a.dtype());
  auto dt = dtype_from_name(name);
  if (!dt.ok() || *dt == DType::kString) {
    return invalid_argument("output ", index, ": numpy dtype '", name, "' is not supported");
  }
  Tensor t(*dt, Dims(a.shape(), a.shape() + a.ndim()));
  if (t.nbytes()) std::memcpy(t.raw_data(), a.data(), t.nbytes());
  return t;
}

Status call_python(const PythonKernel& kernel, KernelContext& ctx) {
  py::gil_scoped_acquire gil;
  try {
    py::list args;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor* t = ctx.input(i);
      if (!t) {
        args.append(py::none());
        continue;
      }
      auto a = tensor_to_array(*t, i);
      if (!a.ok()) return ctx.error(a.status().code(), a.status().message());
      args.append(*a);
    }
    py::dict kwargs;
    for (const auto& kv : ctx.node().attributes) {
      py::object v = attribute_to_python(kv.second);
      if (!v.is_none()) kwargs[py::str(kv.first)] = v;
    }
    py::object result = kernel.fn(*py::tuple(args), **kwargs);
    std::vector<py::object> outs;
    if (py::isinstance<py::tuple>(result) || py::isinstance<py::list>(result)) {
      for (auto item : result) outs.push_back(py::reinterpret_borrow<py::object>(item));
    } else {
      outs.push_back(result);
    }
    if (outs.size() != ctx.num_outputs()) {
      return ctx.error(StatusCode::kRuntimeError, "Python kernel returned ", outs.size(), " array(s), the node has ",
                       ctx.num_outputs(), " output(s)");
    }
    for (size_t i = 0; i < outs.size(); ++i) {
      auto t = array_to_tensor(outs[i], i);
      if (!t.ok()) return ctx.error(StatusCode::kRuntimeError, "Python kernel ", t.status().message());
      ctx.set_output(i, std::move(*t));
    }
    return Status::OK();
  } catch (py::error_already_set& e) {
    return ctx.error(StatusCode::kRuntimeError, "Python kernel raised ", e.what());
  }
}

}  // namespace

void bind_custom_ops(py::module_& m) {
  m.def("register_custom_op", [](const std::string& domain, const std::string& op_type, py::function fn) {
    auto kernel = std::make_shared<PythonKernel>();
    kernel->fn = std::move(fn);
    Status st = register_custom_op(domain, op_type, [kernel](KernelContext& ctx) { return call_python(*kernel, ctx); });
    if (!st.ok()) py_binding::raise_status(st);
  }, py::arg("domain"), py::arg("op_type"), py::arg("fn"));
  m.def("unregister_custom_op", &unregister_custom_op, py::arg("domain"), py::arg("op_type"));
  m.def("custom_op_names", &custom_op_names);
  m.def("load_custom_ops_library", [](const std::string& path) {
    auto added = load_custom_ops_library(path);
    if (!added.ok()) py_binding::raise_status(added.status());
    return *added;
  }, py::arg("path"));
}

}  // namespace pyflame_rt
