// pyflame_rt.Pipeline's native half: stages (models, remote stages, Python functions) joined
// by bounded channels, and a model split into stage actors.
#include <pybind11/stl.h>

#include "actors/partitioned_model.h"
#include "actors/pipeline.h"
#include "python/src/py_bindings.h"
#include "python/src/py_errors.h"
#include "python/src/py_frames.h"
#include "python/src/py_options.h"
#include "python/src/py_remote.h"
#include "python/src/py_session.h"

namespace pyflame_rt::py_binding {

namespace {

class PyPipeline {
 public:
  PyPipeline(const py::list& stages, size_t output_capacity) {
    std::vector<StageSpec> specs;
    for (auto item : stages) {
      py::dict d = item.cast<py::dict>();
      StageSpec spec;
      spec.name = py::str(d["name"]);
      spec.after = d["after"].cast<std::vector<std::string>>();
      spec.capacity = d["capacity"].cast<size_t>();
      spec.policy = unwrap(parse_drop_policy(py::str(d["policy"])));
      if (!d["session"].is_none()) {
        spec.fn = model_stage(spec.name, d["session"].cast<PySession&>().shared()).fn;
      } else if (!d["remote"].is_none()) {
        spec.fn = remote_stage(spec.name, d["remote"].cast<PyRemoteStage&>().shared()).fn;
      } else if (!d["fn"].is_none()) {
        spec.fn = python_stage(spec.name, d["fn"]);
      }
      specs.push_back(std::move(spec));
    }
    pipeline_ = unwrap(Pipeline::create(std::move(specs), output_capacity));
  }
  PyPipeline(std::vector<StageSpec> specs, size_t output_capacity) {
    pipeline_ = unwrap(Pipeline::create(std::move(specs), output_capacity));
  }
  ~PyPipeline() {
    // Stages running Python code need the GIL to finish.
    py::gil_scoped_release release;
    pipeline_.reset();
  }

  uint64_t push(const py::object& frame, uint64_t stream, double max_block_ms) {
    Frame f = frame_from_python(frame, "frame");
    auto max_block = std::chrono::milliseconds(static_cast<int64_t>(max_block_ms));
    return unwrap(without_gil([&] { return pipeline_->push(std::move(f), stream, max_block); }));
  }

  // (stream, seq, outputs or None, (error kind, message) or None, dropped_at, latency_us)
  py::tuple pull(double timeout_ms) {
    auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_ms));
    PipelineResult res = unwrap(without_gil([&] { return pipeline_->pull(timeout); }));
    py::object outputs = res.ok() ? py::object(frame_to_python(res.frame)) : py::object(py::none());
    py::object error = res.status.ok() ? py::object(py::none())
                                       : py::object(py::make_tuple(status_code_name(res.status.code()),
                                                                   res.status.message()));
    return py::make_tuple(res.stream, res.seq, outputs, error, res.dropped_at, res.latency_us);
  }

  void close() { pipeline_->close(); }
  void stop() {
    py::gil_scoped_release release;
    pipeline_->stop();
  }

  py::list metrics() const {
    py::list out;
    for (const auto& m : pipeline_->metrics()) {
      py::dict d;
      d["name"] = m.name;
      d["policy"] = m.policy;
      d["processed"] = m.processed;
      d["failed"] = m.failed;
      d["dropped"] = m.dropped;
      d["queue_depth"] = m.queue_depth;
      d["max_queue_depth"] = m.max_queue_depth;
      d["p50_us"] = m.p50_us;
      d["p99_us"] = m.p99_us;
      out.append(d);
    }
    return out;
  }

 private:
  std::unique_ptr<Pipeline> pipeline_;
};

// (Pipeline, [partition info dicts]) for a model split into `partitions` stage actors; the
// split and the compiles run on the compiler actor.
py::tuple partitioned_pipeline(py::object model, const py::dict& options, int partitions, size_t output_capacity) {
  SessionOptions opts = options_from_dict(options);
  bool from_bytes = py::isinstance<py::bytes>(model);
  std::string source = from_bytes ? model.cast<std::string>() : std::string(py::str(model));
  PartitionedModel parted =
      unwrap(without_gil([&] { return partition_model_async(std::move(source), from_bytes, partitions, opts).get(); }));
  py::list parts;
  for (const auto& p : parted.partitions) {
    py::dict d;
    d["name"] = p.name;
    d["nodes"] = p.nodes;
    d["cost_share"] = p.cost_share;
    d["inputs"] = p.inputs;
    d["outputs"] = p.outputs;
    parts.append(d);
  }
  return py::make_tuple(std::make_unique<PyPipeline>(std::move(parted.stages), output_capacity), parts);
}

}  // namespace

void bind_pipeline(py::module_& m) {
  py::class_<PyPipeline>(m, "Pipeline")
      .def(py::init<py::list, size_t>(), py::arg("stages"), py::arg("output_capacity"))
      .def("push", &PyPipeline::push, py::arg("frame"), py::arg("stream"), py::arg("max_block_ms"))
      .def("pull", &PyPipeline::pull, py::arg("timeout_ms"))
      .def("close", &PyPipeline::close)
      .def("stop", &PyPipeline::stop)
      .def("metrics", &PyPipeline::metrics);
  m.def("partitioned_pipeline", &partitioned_pipeline, py::arg("model"), py::arg("options"), py::arg("partitions"),
        py::arg("output_capacity"));
}

}  // namespace pyflame_rt::py_binding
