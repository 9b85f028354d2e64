#include "python/src/py_frames.h"

#include <memory>

#include "python/src/py_arrays.h"
#include "python/src/py_errors.h"

namespace pyflame_rt::py_binding {

namespace {
// A Python callable held by a C++ stage: released with the GIL held, whoever drops it last.
struct PyCallable {
  py::object fn;
  ~PyCallable() {
    py::gil_scoped_acquire gil;
    fn = py::object();
  }
};
}  // namespace

py::dict frame_to_python(const Frame& frame) {
  py::dict d;
  for (const auto& [name, t] : frame) d[py::str(name)] = array_from_tensor(t);
  return d;
}

Frame frame_from_python(const py::handle& obj, const std::string& what) {
  if (!py::isinstance<py::dict>(obj)) {
    raise_status(invalid_argument(what, ": expected a dict of name -> numpy array, got ", type_name(obj)));
  }
  Frame frame;
  std::vector<py::object> keep;
  for (auto item : obj.cast<py::dict>()) {
    std::string name = py::str(item.first);
    // Only arrays are tensors: a None, a list or an arbitrary object would otherwise become
    // an object array and pass as a string tensor.
    if (!py::isinstance<py::array>(item.second) && !py::isinstance<py::bytes>(item.second)) {
      raise_status(invalid_argument(what, ": entry '", name, "' is a ", type_name(item.second),
                                    ", expected a numpy array"));
    }
    frame[name] = tensor_from_array(name, item.second, keep).clone();
  }
  return frame;
}

StageFn python_stage(const std::string& stage, py::object fn) {
  auto callable = std::make_shared<PyCallable>();
  callable->fn = std::move(fn);
  return [callable, stage](const Frame& frame) -> Expected<Frame> {
    py::gil_scoped_acquire gil;
    try {
      py::object out = callable->fn(frame_to_python(frame));
      return frame_from_python(out, "the value returned by stage '" + stage + "'");
    } catch (py::error_already_set& e) {
      return runtime_error(e.what());
    } catch (const std::exception& e) {  // a cast or an allocation: the stage's error, not the process's
      return runtime_error("stage '", stage, "': ", e.what());
    }
  };
}

}  // namespace pyflame_rt::py_binding
