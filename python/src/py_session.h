// The Python view of an InferenceSession (pyflame_rt.InferenceSession wraps it), and of a
// session still compiling on the compiler actor.
#pragma once

#include <pybind11/pybind11.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "actors/compiler_actor.h"
#include "session/inference_session.h"
#include "session/run_options.h"

namespace pyflame_rt::py_binding {

namespace py = pybind11;

class PySession {
 public:
  PySession(py::object model, const py::dict& options, const std::vector<std::string>& providers);
  explicit PySession(std::shared_ptr<InferenceSession> session) : session_(std::move(session)) {}

  // Outputs as ndarrays (sequences as lists of them); run_options may be None.
  py::list run(const py::object& output_names, const py::dict& feed, const RunOptions* run_options);
  // Feeds and outputs as OrtValues (py_ortvalue.h).
  py::list run_with_ort_values(const py::object& output_names, const py::dict& feed, const RunOptions* run_options);
  // IOBinding: `bound` maps output names to OrtValues whose buffers receive the outputs; the
  // other requested outputs come back as new OrtValues. Returns (one OrtValue per name, the
  // names of the bound outputs the run wrote straight into their buffers, with no copy).
  py::tuple run_with_binding(const py::dict& inputs, const std::vector<std::string>& output_names,
                            const py::dict& bound, const RunOptions* run_options);
  // Starts the run on an actor and returns; callback(outputs or None, user_data, error "")
  // is called from that actor's thread with the GIL held.
  void run_async(const py::object& output_names, const py::dict& feed, py::object callback, py::object user_data,
                 const py::object& run_options);
  // (outputs, [(node name, op type, microseconds), ...]) in execution order.
  py::tuple run_with_profiling(const py::object& output_names, const py::dict& feed);

  static std::vector<std::string> output_names_of(const py::object& output_names);
  // Converts the feed; `keep` holds the arrays the tensors wrap until the run is over.
  std::map<std::string, Tensor> feeds_of(const py::dict& feed, std::vector<py::object>& keep) const;
  // numpy has no bfloat16: a uint16 tensor fed to a bfloat16 input carries the raw bits.
  Tensor retyped_for_input(const std::string& name, Tensor t) const;

  py::list inputs() const;
  py::list outputs() const;
  std::vector<std::string> providers() const { return session_->providers(); }
  std::vector<std::string> warnings() const { return session_->warnings(); }
  std::map<std::string, uint64_t> limit_counters() const { return session_->limit_counters(); }
  bool compiled_from_cache() const { return session_->compiled_from_cache(); }
  std::map<std::string, double> startup_phases() const { return session_->startup_phases(); }
  std::string graph_text() const { return print_graph(session_->graph()); }
  std::vector<std::string> fallback_nodes() const { return session_->fallback_nodes(); }
  std::vector<std::string> devices_used() const { return session_->devices_used(); }
  std::string device_report_json() const { return session_->device_report_json(); }
  // [(node, op_type, device, kernel)] for every node, in run order.
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> node_kernels() const {
    std::vector<std::tuple<std::string, std::string, std::string, std::string>> out;
    for (const auto& k : session_->node_kernels()) out.emplace_back(k.node, k.op_type, k.device, k.kernel);
    return out;
  }
  std::string end_profiling();
  int64_t profiling_start_time_ns() const { return session_->profiling_start_time_ns(); }
  py::dict metadata() const;
  py::list overridable_initializers() const;
  std::string log_id() const { return session_->log_scope().id; }
  std::shared_ptr<const InferenceSession> shared() const { return session_; }
  InferenceSession& native() const { return *session_; }

 private:
  std::shared_ptr<InferenceSession> session_;
};

// Tensors that outlive the call (queued in a batcher, kept as stream state) own their memory.
std::map<std::string, Tensor> owned_feeds(const py::dict& feed, const PySession& session);

// A session being compiled by the compiler actor.
class PySessionFuture {
 public:
  PySessionFuture(py::object model, const py::dict& options, const std::vector<std::string>& providers);
  bool done() const;
  PySession result(double timeout_ms);

 private:
  std::future<SessionResult> future_;
};

void bind_session(py::module_& m);

}  // namespace pyflame_rt::py_binding
