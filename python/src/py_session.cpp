#include "python/src/py_session.h"

#include <pybind11/stl.h>

#include "actors/async_run.h"
#include "python/src/py_arrays.h"
#include "python/src/py_errors.h"
#include "python/src/py_options.h"
#include "python/src/py_ortvalue.h"

namespace pyflame_rt::py_binding {

namespace {
// (source, from_bytes): a model path or the model's bytes.
std::pair<std::string, bool> model_source(const py::object& model) {
  bool from_bytes = py::isinstance<py::bytes>(model);
  return {from_bytes ? model.cast<std::string>() : std::string(py::str(model)), from_bytes};
}
}  // namespace

PySession::PySession(py::object model, const py::dict& options, const std::vector<std::string>& providers) {
  SessionOptions opts = options_from_dict(options);
  auto [source, from_bytes] = model_source(model);
  // Loading and compiling can take a while: let other Python threads run.
  Expected<std::unique_ptr<InferenceSession>> created = without_gil([&] {
    return from_bytes ? InferenceSession::create_from_bytes(source, opts, providers)
                      : InferenceSession::create(source, opts, providers);
  });
  session_ = std::shared_ptr<InferenceSession>(unwrap(std::move(created)));
}

namespace {
const RunOptions& options_or_default(const RunOptions* run_options) {
  static const RunOptions defaults;
  return run_options ? *run_options : defaults;
}

std::vector<Value> run_released(const InferenceSession& session, const std::vector<std::string>& names,
                                const std::map<std::string, Tensor>& feeds, const RunOptions& run_options) {
  return unwrap(without_gil([&] { return session.run_values(names, feeds, run_options); }));
}

// A Python object dropped by whichever thread holds it last, with the GIL.
std::shared_ptr<py::object> held(py::object obj) {
  return std::shared_ptr<py::object>(new py::object(std::move(obj)), [](py::object* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
}
}  // namespace

py::list PySession::run(const py::object& output_names, const py::dict& feed, const RunOptions* run_options) {
  std::vector<std::string> names = output_names_of(output_names);
  std::vector<py::object> keep;
  std::map<std::string, Tensor> feeds = feeds_of(feed, keep);
  py::list out;
  for (const auto& v : run_released(*session_, names, feeds, options_or_default(run_options))) {
    out.append(object_from_value(v));
  }
  return out;
}

namespace {
std::map<std::string, Tensor> tensors_of(const py::dict& values, const char* what) {
  std::map<std::string, Tensor> out;
  for (auto item : values) {
    std::string name = py::str(item.first);
    if (!py::isinstance<PyOrtValue>(item.second)) {
      raise_status(invalid_argument(what, " '", name, "': expected an OrtValue, got ", type_name(item.second)));
    }
    const Value& v = item.second.cast<const PyOrtValue&>().value();
    if (!v.is_tensor()) raise_status(invalid_argument(what, " '", name, "': the OrtValue does not hold a tensor"));
    out[name] = v.tensor;
  }
  return out;
}
}  // namespace

py::list PySession::run_with_ort_values(const py::object& output_names, const py::dict& feed,
                                        const RunOptions* run_options) {
  std::vector<std::string> names = output_names_of(output_names);
  std::map<std::string, Tensor> feeds = tensors_of(feed, "input");
  py::list out;
  for (auto& v : run_released(*session_, names, feeds, options_or_default(run_options))) {
    out.append(PyOrtValue(std::move(v)));
  }
  return out;
}

py::tuple PySession::run_with_binding(const py::dict& inputs, const std::vector<std::string>& output_names,
                                      const py::dict& bound, const RunOptions* run_options) {
  std::map<std::string, Tensor> feeds = tensors_of(inputs, "bound input");
  std::vector<py::object> targets;  // the bound OrtValue per output, or None
  std::map<std::string, Tensor> preallocated;
  for (const auto& name : output_names) {
    py::object target = bound.contains(name) ? py::object(bound[py::str(name)]) : py::object(py::none());
    if (!target.is_none()) {
      const Value& v = target.cast<const PyOrtValue&>().value();
      if (!v.is_tensor()) raise_status(invalid_argument("output '", name, "': a bound OrtValue must hold a tensor"));
      preallocated[name] = v.tensor;
    }
    targets.push_back(std::move(target));
  }
  const RunOptions& ro = options_or_default(run_options);
  std::vector<bool> in_place;
  Expected<std::vector<Value>> result = without_gil(
      [&] { return session_->run_values(output_names, feeds, ro, preallocated, &in_place); });
  std::vector<Value> produced = unwrap(std::move(result));
  py::list out, direct;
  for (size_t i = 0; i < produced.size(); ++i) {
    out.append(targets[i].is_none() ? py::cast(PyOrtValue(std::move(produced[i]))) : targets[i]);
    if (in_place[i]) direct.append(output_names[i]);
  }
  return py::make_tuple(out, direct);
}

void PySession::run_async(const py::object& output_names, const py::dict& feed, py::object callback,
                          py::object user_data, const py::object& run_options) {
  std::vector<std::string> names = output_names_of(output_names);
  std::map<std::string, Tensor> feeds;
  for (auto item : feed) {  // the arrays stay alive (and unchanged, by contract) until the callback
    std::string name = py::str(item.first);
    py::array a = py::array::ensure(item.second);
    if (!a) raise_status(invalid_argument("input '", name, "': expected a numpy array, got ", type_name(item.second)));
    feeds[name] = retyped_for_input(name, tensor_sharing_array(name, a));
  }
  auto options = run_options.is_none() ? std::make_shared<RunOptions>() : run_options.cast<std::shared_ptr<RunOptions>>();
  auto fn = held(std::move(callback));
  auto data = held(std::move(user_data));
  pyflame_rt::run_async(session_, std::move(names), std::move(feeds), std::move(options),
                        [fn, data](Expected<std::vector<Value>> outputs) {
                          py::gil_scoped_acquire gil;
                          try {
                            if (outputs.ok()) {
                              py::list out;
                              for (const auto& v : outputs.value()) out.append(object_from_value(v));
                              (*fn)(out, *data, "");
                            } else {
                              (*fn)(py::none(), *data, outputs.status().to_string());
                            }
                          } catch (py::error_already_set& e) {
                            // Nobody waits for the callback: report like an exception in a thread.
                            e.discard_as_unraisable("pyflame_rt run_async callback");
                          }
                        });
}

py::tuple PySession::run_with_profiling(const py::object& output_names, const py::dict& feed) {
  std::vector<std::string> names = output_names_of(output_names);
  std::vector<py::object> keep;
  std::map<std::string, Tensor> feeds = feeds_of(feed, keep);
  InferenceSession::ProfiledRun run = unwrap(without_gil([&] { return session_->run_with_profiling(names, feeds); }));
  py::list nodes;
  for (const auto& n : run.nodes) nodes.append(py::make_tuple(n.name, n.op_type, n.duration_us));
  return py::make_tuple(arrays_of(run.outputs), nodes);
}

std::vector<std::string> PySession::output_names_of(const py::object& output_names) {
  if (output_names.is_none()) return {};
  if (!py::isinstance<py::sequence>(output_names) || py::isinstance<py::str>(output_names)) {
    raise_status(invalid_argument("output_names: expected a list of str, got ", type_name(output_names)));
  }
  std::vector<std::string> names;
  for (py::handle item : output_names) {
    if (!py::isinstance<py::str>(item)) {
      raise_status(invalid_argument("output_names[", names.size(), "]: expected str, got ", type_name(item), " (",
                                    std::string(py::repr(item)), ")"));
    }
    names.push_back(item.cast<std::string>());
  }
  return names;
}

std::map<std::string, Tensor> PySession::feeds_of(const py::dict& feed, std::vector<py::object>& keep) const {
  std::map<std::string, Tensor> feeds;
  for (auto item : feed) {
    std::string name = py::str(item.first);
    feeds[name] = retyped_for_input(name, tensor_from_array(name, item.second, keep));
  }
  return feeds;
}

Tensor PySession::retyped_for_input(const std::string& name, Tensor t) const {
  if (t.dtype() != DType::kUInt16) return t;
  for (const auto& i : session_->inputs()) {
    if (i.name == name && i.dtype == DType::kBFloat16) return Tensor::wrap(DType::kBFloat16, t.dims(), t.raw_data(), nullptr);
  }
  return t;
}

py::list PySession::inputs() const { return infos_to_python(session_->inputs()); }
py::list PySession::outputs() const { return infos_to_python(session_->outputs()); }
std::string PySession::end_profiling() { return unwrap(session_->end_profiling()); }

py::dict PySession::metadata() const {
  const ModelMetadata& m = session_->metadata();
  py::dict d;
  d["producer_name"] = m.producer_name;
  d["producer_version"] = m.producer_version;
  d["graph_name"] = m.graph_name;
  d["graph_description"] = m.graph_description;
  d["description"] = m.description;
  d["domain"] = m.domain;
  d["version"] = m.version;
  d["custom_metadata_map"] = m.custom_metadata_map;
  return d;
}

py::list PySession::overridable_initializers() const { return infos_to_python(session_->overridable_initializers()); }

std::map<std::string, Tensor> owned_feeds(const py::dict& feed, const PySession& session) {
  std::vector<py::object> keep;
  std::map<std::string, Tensor> feeds = session.feeds_of(feed, keep);
  for (auto& [name, t] : feeds) t = t.clone();
  return feeds;
}

PySessionFuture::PySessionFuture(py::object model, const py::dict& options, const std::vector<std::string>& providers) {
  SessionOptions opts = options_from_dict(options);
  auto [source, from_bytes] = model_source(model);
  future_ = create_session_async(std::move(source), from_bytes, opts, providers);
}

bool PySessionFuture::done() const { return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

PySession PySessionFuture::result(double timeout_ms) {
  if (!future_.valid()) raise_status(make_status(StatusCode::kFail, "result() was already taken"));
  bool ready;
  {
    py::gil_scoped_release release;
    ready = future_.wait_for(std::chrono::duration<double, std::milli>(timeout_ms)) == std::future_status::ready;
  }
  if (!ready) raise_status(make_status(StatusCode::kDeadlineExceeded, "model still compiling after ", timeout_ms, " ms"));
  return PySession(unwrap(future_.get()));
}

void bind_session(py::module_& m) {
  py::class_<PySession>(m, "Session")
      .def(py::init<py::object, py::dict, std::vector<std::string>>(), py::arg("model"),
           py::arg("options"), py::arg("providers"))
      .def("run", &PySession::run, py::arg("output_names"), py::arg("feed"), py::arg("run_options") = nullptr)
      .def("run_with_ort_values", &PySession::run_with_ort_values, py::arg("output_names"), py::arg("feed"),
           py::arg("run_options") = nullptr)
      .def("run_with_binding", &PySession::run_with_binding, py::arg("inputs"), py::arg("output_names"),
           py::arg("bound"), py::arg("run_options") = nullptr)
      .def("run_async", &PySession::run_async, py::arg("output_names"), py::arg("feed"), py::arg("callback"),
           py::arg("user_data"), py::arg("run_options") = py::none())
      .def("metadata", &PySession::metadata)
      .def("overridable_initializers", &PySession::overridable_initializers)
      .def("profiling_start_time_ns", &PySession::profiling_start_time_ns)
      .def("log_id", &PySession::log_id)
      .def("run_with_profiling", &PySession::run_with_profiling, py::arg("output_names"), py::arg("feed"))
      .def("inputs", &PySession::inputs)
      .def("outputs", &PySession::outputs)
      .def("providers", &PySession::providers)
      .def("warnings", &PySession::warnings)
      .def("limit_counters", &PySession::limit_counters)
      .def("compiled_from_cache", &PySession::compiled_from_cache)
      .def("startup_phases", &PySession::startup_phases)
      .def("graph_text", &PySession::graph_text)
      .def("fallback_nodes", &PySession::fallback_nodes)
      .def("devices_used", &PySession::devices_used)
      .def("device_report_json", &PySession::device_report_json)
      .def("node_kernels", &PySession::node_kernels)
      .def("end_profiling", &PySession::end_profiling);
  py::class_<PySessionFuture>(m, "SessionFuture")
      .def(py::init<py::object, py::dict, std::vector<std::string>>(), py::arg("model"), py::arg("options"),
           py::arg("providers"))
      .def("done", &PySessionFuture::done)
      .def("result", &PySessionFuture::result, py::arg("timeout_ms"));
}

}  // namespace pyflame_rt::py_binding
