// _pyflame_rt_serving.ModelServer (the extension of serving_module.cpp): a net::Server (KServe
// v2 over HTTP) over models given as paths or native sessions. The Python wrapper is
// pyflame_rt/serving.py.
#include "python/src/py_serving.h"

#include <pybind11/stl.h>

#include "net/server.h"

#include "python/src/py_errors.h"

namespace py = pybind11;

namespace pyflame_rt {
namespace {

net::ServerOptions server_options(const py::dict& d) {
  net::ServerOptions o;
  net::ModelConfig& m = o.model_defaults;
  m.batching.batch_timeout_ms = 0;  // the CLI's defaults (tools/model_server_command.cpp)
  m.session.num_threads = 1;
  m.batching.device_actors = 2;
  for (auto item : d) {
    std::string key = py::str(item.first);
    py::handle v = item.second;
    if (key == "host") o.host = py::str(v);
    else if (key == "port") o.http_port = v.cast<int>();
    else if (key == "http_threads") o.http_threads = v.cast<int>();
    else if (key == "max_body_bytes") o.max_body_bytes = v.cast<size_t>();
    else if (key == "shutdown_grace_ms") o.shutdown_grace_ms = v.cast<int64_t>();
    else if (key == "max_batch_size") m.batching.max_batch_size = v.cast<int>();
    else if (key == "batch_timeout_ms") m.batching.batch_timeout_ms = v.cast<double>();
    else if (key == "preferred_batch_sizes") m.batching.preferred_batch_sizes = v.cast<std::vector<int>>();
    else if (key == "max_queue_size") m.batching.max_queue_size = v.cast<int>();
    else if (key == "request_timeout_ms") m.batching.request_timeout_ms = v.cast<int64_t>();
    else if (key == "device_actors") m.batching.device_actors = v.cast<int>();
    else if (key == "num_threads") m.session.num_threads = v.cast<int>();
    else if (key == "default_priority_level") m.default_priority_level = v.cast<int64_t>();
    else if (key == "repository") o.repository_dir = py::str(v);
    else if (key == "grpc_port") o.grpc_port = v.cast<int>();
    else if (key == "grpc_max_concurrent_rpcs") o.grpc_max_concurrent_rpcs = v.cast<int>();
    else if (key == "zmq_pull") o.zmq_pull = py::str(v);
    else if (key == "zmq_pub") o.zmq_pub = py::str(v);
    else if (key == "zmq_sub") o.zmq_sub = py::str(v);
    else if (key == "sequence_idle_ms") o.sequence_idle_ms = v.cast<int>();
    else py_binding::raise_status(invalid_argument("ModelServer: unknown option '", key, "'"));
  }
  return o;
}

class PyModelServer {
 public:
  // models: [(name, path or None, native session or None)]
  PyModelServer(const py::list& models, const py::dict& options,
                const std::function<std::shared_ptr<const InferenceSession>(py::handle)>& session_of) {
    net::ServerOptions opts = server_options(options);
    if (Status st = opts.model_defaults.validate(); !st.ok()) py_binding::raise_status(st);
    auto repo = std::make_shared<net::ModelRepository>(opts.model_defaults);
    std::vector<std::pair<std::string, std::string>> paths;
    for (auto item : models) {
      auto t = item.cast<py::tuple>();
      std::string name = t[0].cast<std::string>();
      if (!t[1].is_none()) {
        paths.emplace_back(name, t[1].cast<std::string>());
      } else {
        Status st = repo->load(name, session_of(t[2]));
        if (!st.ok()) py_binding::raise_status(st);
      }
    }
    Expected<std::unique_ptr<net::Server>> started = Status();
    {
      py::gil_scoped_release release;  // models compile here
      Status st = Status::OK();
      if (!opts.repository_dir.empty()) {
        st = repo->set_directory(opts.repository_dir);
        if (st.ok()) st = repo->load_directory();
      }
      for (const auto& [name, path] : paths) {
        if (st.ok()) st = repo->load(name, path);
      }
      started = st.ok() ? net::Server::start(repo, opts) : Expected<std::unique_ptr<net::Server>>(st);
    }
    if (!started.ok()) py_binding::raise_status(started.status());
    server_ = std::move(started).value();
  }

  int port() const { return server_ ? server_->http_port() : -1; }
  int grpc_port() const { return server_ ? server_->grpc_port() : -1; }
  std::vector<std::string> addresses() const { return server_->addresses(); }
  std::vector<std::string> models() const { return server_->repository()->model_names(); }
  std::string metrics() const { return server_->repository()->metrics().render(); }
  void stop() {
    py::gil_scoped_release release;
    if (server_) server_->stop();
  }

 private:
  std::unique_ptr<net::Server> server_;
};

}  // namespace

void register_serving(py::module_& m,
                      std::function<std::shared_ptr<const InferenceSession>(py::handle)> session_of) {
  py::class_<PyModelServer>(m, "ModelServer")
      .def(py::init([session_of](const py::list& models, const py::dict& options) {
             return std::make_unique<PyModelServer>(models, options, session_of);
           }),
           py::arg("models"), py::arg("options"))
      .def("port", &PyModelServer::port)
      .def("grpc_port", &PyModelServer::grpc_port)
      .def("addresses", &PyModelServer::addresses)
      .def("models", &PyModelServer::models)
      .def("metrics", &PyModelServer::metrics)
      .def("stop", &PyModelServer::stop);
}

}  // namespace pyflame_rt
