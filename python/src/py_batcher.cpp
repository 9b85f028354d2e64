// pyflame_rt.Batcher's native half: concurrent requests coalesced by the batching actor.
#include <pybind11/stl.h>

#include "actors/batcher.h"
#include "python/src/py_arrays.h"
#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"
#include "python/src/py_session.h"

namespace pyflame_rt::py_binding {

namespace {

py::dict stats_to_python(const BatchStats& s) {
  py::dict d;
  d["requests"] = s.requests;
  d["rejected_queue_full"] = s.rejected_queue_full;
  d["rejected_invalid"] = s.rejected_invalid;
  d["deadline_exceeded"] = s.deadline_exceeded;
  d["failed"] = s.failed;
  d["batches"] = s.batches;
  d["batched_requests"] = s.batched_requests;
  d["model_runs"] = s.model_runs;
  d["device_restarts"] = s.device_restarts;
  d["queued"] = s.queued;
  d["mean_batch_size"] = s.mean_batch_size();
  return d;
}

class PyBatcher {
 public:
  PyBatcher(const PySession& session, const std::string& name, const py::dict& options) : session_(session) {
    BatchOptions o;
    for (auto item : options) {
      std::string key = py::str(item.first);
      py::handle v = item.second;
      if (key == "max_batch_size") o.max_batch_size = v.cast<int>();
      else if (key == "batch_timeout_ms") o.batch_timeout_ms = v.cast<double>();
      else if (key == "preferred_batch_sizes") o.preferred_batch_sizes = v.cast<std::vector<int>>();
      else if (key == "max_queue_size") o.max_queue_size = v.cast<int>();
      else if (key == "request_timeout_ms") o.request_timeout_ms = v.cast<int64_t>();
      else if (key == "device_actors") o.device_actors = v.cast<int>();
      else raise_status(invalid_argument("batcher: unknown option '", key, "'"));
    }
    batcher_ = unwrap(Batcher::create(make_session_target(session.shared(), name), o));
  }

  py::list run(const py::object& output_names, const py::dict& feed, int priority) {
    std::vector<std::string> names = PySession::output_names_of(output_names);
    std::map<std::string, Tensor> feeds = owned_feeds(feed, session_);
    return arrays_of(unwrap(without_gil([&] { return batcher_->run(std::move(feeds), names, priority); })));
  }

  // Submits every feed, then collects the answers in order. The first failure is raised
  // after all have been answered, naming its index.
  py::list run_many(const py::object& output_names, const py::list& feeds, int priority) {
    std::vector<std::string> names = PySession::output_names_of(output_names);
    std::vector<std::map<std::string, Tensor>> all;
    for (size_t i = 0; i < feeds.size(); ++i) {
      if (!py::isinstance<py::dict>(feeds[i])) {
        raise_status(invalid_argument("input_feeds[", i, "]: expected a dict of input name -> numpy array, got ",
                                      type_name(feeds[i])));
      }
      all.push_back(owned_feeds(feeds[i].cast<py::dict>(), session_));
    }
    std::vector<BatchResult> results;
    {
      py::gil_scoped_release release;
      std::vector<std::future<BatchResult>> futures;
      for (auto& f : all) futures.push_back(batcher_->submit(std::move(f), names, priority));
      for (auto& f : futures) results.push_back(batcher_->wait(f));
    }
    py::list out;
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) raise_status(results[i].status().with_context("input_feeds[" + std::to_string(i) + "]: "));
      out.append(arrays_of(results[i].value()));
    }
    return out;
  }

  py::dict stats() const { return stats_to_python(batcher_->stats()); }
  void stop() { batcher_->stop(); }

 private:
  const PySession& session_;
  std::shared_ptr<Batcher> batcher_;
};

}  // namespace

void bind_batcher(py::module_& m) {
  py::class_<PyBatcher>(m, "Batcher")
      .def(py::init<const PySession&, std::string, py::dict>(), py::arg("session"), py::arg("name"),
           py::arg("options"), py::keep_alive<1, 2>())
      .def("run", &PyBatcher::run, py::arg("output_names"), py::arg("feed"), py::arg("priority") = 0)
      .def("run_many", &PyBatcher::run_many, py::arg("output_names"), py::arg("feeds"), py::arg("priority") = 0)
      .def("stats", &PyBatcher::stats)
      .def("stop", &PyBatcher::stop);
}

}  // namespace pyflame_rt::py_binding
