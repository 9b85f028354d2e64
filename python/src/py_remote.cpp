// Serving a model or a Python function to other processes (pyflame_rt.serve), and calling one.
#include "python/src/py_remote.h"

#include <pybind11/stl.h>

#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"
#include "python/src/py_frames.h"
#include "python/src/py_session.h"

namespace pyflame_rt::py_binding {

namespace {

class PyStageServer {
 public:
  PyStageServer(const std::string& name, py::object target, const std::string& host, uint16_t port) {
    ServeAddress address{host, port};
    if (py::isinstance<PySession>(target)) {
      server_ = unwrap(StageServer::serve_model(name, target.cast<PySession&>().shared(), address));
    } else {
      server_ = unwrap(StageServer::serve(name, python_stage(name, std::move(target)), address));
    }
  }
  ~PyStageServer() { stop(); }
  uint16_t port() const { return server_->port(); }
  const std::string& name() const { return server_->name(); }
  uint64_t frames_served() const { return server_->frames_served(); }
  uint64_t frames_failed() const { return server_->frames_failed(); }
  void stop() {
    // A Python stage still running needs the GIL to finish.
    py::gil_scoped_release release;
    server_->stop();
  }
  // True when no frame was left running past `grace_ms` (StageServer::stop(grace)).
  bool stop_within(int64_t grace_ms) {
    py::gil_scoped_release release;
    server_->stop(std::chrono::milliseconds(grace_ms));
    return !server_->frame_in_progress();
  }
  bool frame_in_progress() const { return server_->frame_in_progress(); }

 private:
  std::unique_ptr<StageServer> server_;
};

}  // namespace

PyRemoteStage::PyRemoteStage(const std::string& host, uint16_t port, double timeout_ms) {
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_ms));
  remote_ = unwrap(without_gil([&] { return RemoteStage::connect(host, port, timeout); }));
}

py::dict PyRemoteStage::call(const py::object& frame) const {
  Frame f = frame_from_python(frame, "frame");
  return frame_to_python(unwrap(without_gil([&] { return remote_->call(f); })));
}

void bind_remote(py::module_& m) {
  py::class_<PyStageServer>(m, "StageServer")
      .def(py::init<std::string, py::object, std::string, uint16_t>(), py::arg("name"), py::arg("target"),
           py::arg("host"), py::arg("port"))
      .def("port", &PyStageServer::port)
      .def("name", &PyStageServer::name)
      .def("frames_served", &PyStageServer::frames_served)
      .def("frames_failed", &PyStageServer::frames_failed)
      .def("stop", &PyStageServer::stop)
      .def("stop_within", &PyStageServer::stop_within, py::arg("grace_ms"))
      .def("frame_in_progress", &PyStageServer::frame_in_progress);
  py::class_<PyRemoteStage>(m, "RemoteStage")
      .def(py::init<std::string, uint16_t, double>(), py::arg("host"), py::arg("port"), py::arg("timeout_ms"))
      .def("call", &PyRemoteStage::call, py::arg("frame"))
      .def("name", &PyRemoteStage::name)
      .def("address", &PyRemoteStage::address)
      .def("inputs", &PyRemoteStage::inputs)
      .def("outputs", &PyRemoteStage::outputs);
}

}  // namespace pyflame_rt::py_binding
