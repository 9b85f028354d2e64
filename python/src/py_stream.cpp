// pyflame_rt.Stream's native half: windows of a stream run through a session, state carried.
#include <pybind11/stl.h>

#include "session/stream.h"
#include "python/src/py_arrays.h"
#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"
#include "python/src/py_session.h"

namespace pyflame_rt::py_binding {

namespace {

class PyStream {
 public:
  PyStream(const PySession& session, const py::dict& options) {
    StreamOptions o;
    for (auto item : options) {
      std::string key = py::str(item.first);
      py::handle v = item.second;
      if (key == "chunk_size") o.chunk_size = v.cast<int64_t>();
      else if (key == "overlap") o.overlap = v.cast<int64_t>();
      else if (key == "stateful") o.stateful = v.cast<bool>();
      else if (key == "state") o.initial_state = owned_feeds(v.cast<py::dict>(), session);
      else if (key == "state_map") o.state_map = v.cast<std::map<std::string, std::string>>();
      else if (key == "input_name") o.input_name = py::str(v);
      else if (key == "time_axis") o.time_axis = v.cast<int>();
      else if (key == "time_aligned_outputs") o.time_aligned_outputs = v.cast<std::vector<std::string>>();
      else if (key == "name") o.name = py::str(v);
      else if (key == "idle_timeout_ms") o.idle_timeout_ms = v.cast<int64_t>();
      else raise_status(invalid_argument("create_stream: unknown option '", key, "'"));
    }
    stream_ = unwrap(Stream::create(session.shared(), o));
  }

  py::list process(const py::object& chunk) {
    std::vector<py::object> keep;
    Tensor t = tensor_from_array("chunk of stream '" + stream_->name() + "'", chunk, keep);
    return arrays_of(unwrap(without_gil([&] { return stream_->process(t); })));
  }
  py::list flush() {
    return arrays_of(unwrap(without_gil([&] { return stream_->flush(); })));
  }
  void reset() { stream_->reset(); }
  void close() { stream_->close(); }
  std::string name() const { return stream_->name(); }
  std::string input_name() const { return stream_->input_name(); }
  int64_t window() const { return stream_->window(); }
  int64_t windows_run() const { return stream_->windows_run(); }
  bool idle_expired() const { return stream_->idle_expired(); }
  std::map<std::string, std::string> state_pairs() const {
    std::map<std::string, std::string> m;
    for (const auto& p : stream_->state_pairs()) m[p.input] = p.output;
    return m;
  }

 private:
  std::unique_ptr<Stream> stream_;
};

}  // namespace

void bind_stream(py::module_& m) {
  py::class_<PyStream>(m, "Stream")
      .def(py::init<const PySession&, py::dict>(), py::arg("session"), py::arg("options"), py::keep_alive<1, 2>())
      .def("process", &PyStream::process, py::arg("chunk"))
      .def("flush", &PyStream::flush)
      .def("reset", &PyStream::reset)
      .def("close", &PyStream::close)
      .def("name", &PyStream::name)
      .def("input_name", &PyStream::input_name)
      .def("window", &PyStream::window)
      .def("windows_run", &PyStream::windows_run)
      .def("idle_expired", &PyStream::idle_expired)
      .def("state_pairs", &PyStream::state_pairs);
}

}  // namespace pyflame_rt::py_binding
