// The _pyflame_rt extension: a thin pybind11 layer over the public C++ API (actors/
// inference_session.h). The ONNX-Runtime-shaped Python surface lives in pyflame_rt/*.py.
//
// Status codes become the exception classes of pyflame_rt.errors (one per kind). Input arrays
// are wrapped without copying for the duration of a run; the GIL is released while it runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "actors/actor_runtime.h"
#include "actors/batcher.h"
#include "actors/compiler_actor.h"
#include "actors/inference_session.h"
#include "actors/partitioned_model.h"
#include "actors/pipeline.h"
#include "actors/remote_stage.h"
#include "actors/stream.h"
#include "graph/model_loader.h"

namespace py = pybind11;
using namespace pyflame_rt;

namespace {

[[noreturn]] void raise_status(const Status& st) {
  py::object errors = py::module_::import("pyflame_rt.errors");
  py::object cls = errors.attr("exception_for_code")(status_code_name(st.code()));
  PyErr_SetString(cls.ptr(), st.message().c_str());
  throw py::error_already_set();
}

template <typename T>
T unwrap(Expected<T> e) {
  if (!e.ok()) raise_status(e.status());
  return std::move(e).value();
}

DType dtype_of_array(const std::string& name, const py::array& a) {
  py::dtype dt = a.dtype();
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
  raise_status(invalid_argument("input '", name, "': numpy dtype '",
                                std::string(py::str(dt)), "' is not supported"));
}

// Wraps (no copy) or, for strings and non-contiguous arrays, converts an array to a Tensor.
// `keep` collects the contiguous arrays that must outlive the run.
Tensor tensor_from_array(const std::string& name, py::handle obj, std::vector<py::object>& keep) {
  py::array a = py::array::ensure(obj);
  if (!a) {
    raise_status(invalid_argument("input '", name, "': expected a numpy array, got ",
                                  std::string(py::str(py::type::of(obj).attr("__name__")))));
  }
  DType dt = dtype_of_array(name, a);
  Dims dims(a.shape(), a.shape() + a.ndim());
  if (dt == DType::kString) {
    Tensor t(DType::kString, dims);
    py::list flat = a.attr("reshape")(-1).attr("tolist")();
    auto* s = t.data<std::string>();
    for (size_t i = 0; i < flat.size(); ++i) {
      py::handle item = flat[i];
      if (!py::isinstance<py::str>(item) && !py::isinstance<py::bytes>(item)) {
        raise_status(invalid_argument("input '", name, "': an object array must hold str or bytes, element ", i,
                                      " is a ", std::string(py::str(py::type::of(item).attr("__name__")))));
      }
      s[i] = py::isinstance<py::bytes>(item) ? std::string(py::bytes(py::reinterpret_borrow<py::object>(item)))
                                            : std::string(py::str(item));
    }
    return t;
  }
  // A non-contiguous view (a stride-0 broadcast, say) is copied: one that cannot be
  // allocated is an error naming the input, not a null buffer read later.
  py::array c = py::array::ensure(a, py::array::c_style);
  if (!c) {
    raise_status(make_status(StatusCode::kResourceExhausted, "input '", name, "': the ", dims_to_string(dims),
                             " array is not contiguous and a contiguous copy cannot be allocated"));
  }
  // Foreign byte order ('>f4' on a little-endian host): read by value, never as native bytes.
  constexpr char kForeign = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '>' : '<';
  if (py::dtype(c.dtype()).byteorder() == kForeign && c.itemsize() > 1) {
    Tensor t(dt, dims);
    const auto* src = static_cast<const unsigned char*>(c.data());
    auto* dst = static_cast<unsigned char*>(t.raw_data());
    const size_t item = static_cast<size_t>(c.itemsize());
    for (size_t i = 0; i < t.nbytes(); i += item) {
      for (size_t k = 0; k < item; ++k) dst[i + k] = src[i + item - 1 - k];
    }
    return t;
  }
  keep.push_back(c);
  return Tensor::wrap(dt, dims, const_cast<void*>(c.data()), nullptr);
}

py::object array_from_tensor(const Tensor& t) {
  std::vector<py::ssize_t> shape(t.dims().begin(), t.dims().end());
  if (t.dtype() == DType::kString) {
    py::array out(py::dtype("O"), shape);
    auto** objs = static_cast<PyObject**>(out.mutable_data());
    const auto* s = t.data<std::string>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      py::str v(s[i]);
      objs[i] = v.release().ptr();
    }
    return std::move(out);
  }
  const char* fmt = nullptr;
  switch (t.dtype()) {
    case DType::kFloat32: fmt = "float32"; break;
    case DType::kFloat64: fmt = "float64"; break;
    case DType::kFloat16: fmt = "float16"; break;
    case DType::kInt8: fmt = "int8"; break;
    case DType::kInt16: fmt = "int16"; break;
    case DType::kInt32: fmt = "int32"; break;
    case DType::kInt64: fmt = "int64"; break;
    case DType::kUInt8: fmt = "uint8"; break;
    case DType::kUInt16: fmt = "uint16"; break;
    case DType::kUInt32: fmt = "uint32"; break;
    case DType::kUInt64: fmt = "uint64"; break;
    case DType::kBool: fmt = "bool"; break;
    case DType::kBFloat16: fmt = "uint16"; break;  // numpy has no bfloat16: raw bits
    default: raise_status(not_implemented("output dtype ", dtype_name(t.dtype())));
  }
  py::array out(py::dtype(fmt), shape);
  if (t.nbytes()) std::memcpy(out.mutable_data(), t.raw_data(), t.nbytes());
  return std::move(out);
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

SessionOptions options_from_dict(const py::dict& d) {
  SessionOptions o;
  for (auto item : d) {
    std::string key = py::str(item.first);
    py::handle v = item.second;
    if (key == "device") o.device = py::str(v);
    else if (key == "num_threads") o.num_threads = v.cast<int>();
    else if (key == "enable_profiling") o.enable_profiling = v.cast<bool>();
    else if (key == "profile_file_prefix") o.profile_file_prefix = py::str(v);
    else if (key == "memory_limit_mb") o.memory_limit_mb = v.cast<int64_t>();
    else if (key == "execution_mode") o.execution_mode = py::str(v);
    else if (key == "memory_pool") o.memory_pool = py::str(v);
    else if (key == "enable_memory_reuse") o.enable_memory_reuse = v.cast<bool>();
    else if (key == "optimization_level") o.optimization_level = static_cast<OptLevel>(v.cast<int>());
    else if (key == "disabled_passes") o.disabled_passes = v.cast<std::vector<std::string>>();
    else if (key == "optimized_model_path") o.optimized_model_path = py::str(v);
    else if (key == "compile_cache_dir") o.compile_cache_dir = py::str(v);
    else raise_status(invalid_argument("SessionOptions: unknown option '", key, "'"));
  }
  return o;
}

class PySession {
 public:
  PySession(py::object model, const py::dict& options, const std::vector<std::string>& providers) {
    SessionOptions opts = options_from_dict(options);
    bool from_bytes = py::isinstance<py::bytes>(model);
    std::string source = from_bytes ? model.cast<std::string>() : std::string(py::str(model));
    Expected<std::unique_ptr<InferenceSession>> created = Status();
    {
      // Loading and compiling can take a while: let other Python threads run. Errors are
      // raised only after the GIL is taken back.
      py::gil_scoped_release release;
      created = from_bytes ? InferenceSession::create_from_bytes(source, opts, providers)
                           : InferenceSession::create(source, opts, providers);
    }
    session_ = std::shared_ptr<InferenceSession>(unwrap(std::move(created)));
  }

  explicit PySession(std::shared_ptr<InferenceSession> session) : session_(std::move(session)) {}

  py::list run(const py::object& output_names, const py::dict& feed) {
    std::vector<std::string> names = output_names_of(output_names);
    std::vector<py::object> keep;
    std::map<std::string, Tensor> feeds = feeds_of(feed, keep);
    Expected<std::vector<Tensor>> result = Status();
    {
      py::gil_scoped_release release;
      result = session_->run(names, feeds);
    }
    return arrays_of(unwrap(std::move(result)));
  }

  // (outputs, [(node name, op type, microseconds), ...]) in execution order.
  py::tuple run_with_profiling(const py::object& output_names, const py::dict& feed) {
    std::vector<std::string> names = output_names_of(output_names);
    std::vector<py::object> keep;
    std::map<std::string, Tensor> feeds = feeds_of(feed, keep);
    Expected<InferenceSession::ProfiledRun> result = Status();
    {
      py::gil_scoped_release release;
      result = session_->run_with_profiling(names, feeds);
    }
    InferenceSession::ProfiledRun run = unwrap(std::move(result));
    py::list nodes;
    for (const auto& n : run.nodes) nodes.append(py::make_tuple(n.name, n.op_type, n.duration_us));
    return py::make_tuple(arrays_of(run.outputs), nodes);
  }

 public:
  static std::vector<std::string> output_names_of(const py::object& output_names) {
    if (output_names.is_none()) return {};
    if (!py::isinstance<py::sequence>(output_names) || py::isinstance<py::str>(output_names)) {
      raise_status(invalid_argument("output_names: expected a list of str, got ",
                                    std::string(py::str(py::type::of(output_names).attr("__name__")))));
    }
    std::vector<std::string> names;
    for (py::handle item : output_names) {
      if (!py::isinstance<py::str>(item)) {
        raise_status(invalid_argument("output_names[", names.size(), "]: expected str, got ",
                                      std::string(py::str(py::type::of(item).attr("__name__"))), " (",
                                      std::string(py::repr(item)), ")"));
      }
      names.push_back(item.cast<std::string>());
    }
    return names;
  }

  // Converts the feed; `keep` holds the arrays the tensors wrap until the run is over.
  std::map<std::string, Tensor> feeds_of(const py::dict& feed, std::vector<py::object>& keep) const {
    std::map<std::string, Tensor> feeds;
    for (auto item : feed) {
      std::string name = py::str(item.first);
      Tensor t = tensor_from_array(name, item.second, keep);
      // numpy has no bfloat16: a uint16 array fed to a bfloat16 input carries the raw bits.
      if (t.dtype() == DType::kUInt16 && expects_bfloat16(name)) {
        t = Tensor::wrap(DType::kBFloat16, t.dims(), t.raw_data(), nullptr);
      }
      feeds[name] = std::move(t);
    }
    return feeds;
  }


 public:
  bool expects_bfloat16(const std::string& name) const {
    for (const auto& i : session_->inputs()) if (i.name == name) return i.dtype == DType::kBFloat16;
    return false;
  }

  py::list inputs() const { return infos_to_python(session_->inputs()); }
  py::list outputs() const { return infos_to_python(session_->outputs()); }
  std::vector<std::string> providers() const { return session_->providers(); }
  std::vector<std::string> warnings() const { return session_->warnings(); }
  bool compiled_from_cache() const { return session_->compiled_from_cache(); }
  std::string graph_text() const { return print_graph(session_->graph()); }
  std::vector<std::string> fallback_nodes() const { return session_->fallback_nodes(); }
  std::string end_profiling() { return unwrap(session_->end_profiling()); }
  std::shared_ptr<const InferenceSession> shared() const { return session_; }

 private:
  std::shared_ptr<InferenceSession> session_;
};

// Tensors that outlive the call (queued in a batcher, kept as stream state) own their memory.
std::map<std::string, Tensor> owned_feeds(const py::dict& feed, const PySession& session) {
  std::vector<py::object> keep;
  std::map<std::string, Tensor> feeds = session.feeds_of(feed, keep);
  for (auto& [name, t] : feeds) t = t.clone();
  return feeds;
}

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
    BatchResult r = Status();
    {
      py::gil_scoped_release release;
      r = batcher_->run(std::move(feeds), names, priority);
    }
    return arrays_of(unwrap(std::move(r)));
  }

  // Submits every feed, then collects the answers in order. The first failure is raised
  // after all have been answered, naming its index.
  py::list run_many(const py::object& output_names, const py::list& feeds, int priority) {
    std::vector<std::string> names = PySession::output_names_of(output_names);
    std::vector<std::map<std::string, Tensor>> all;
    for (size_t i = 0; i < feeds.size(); ++i) {
      if (!py::isinstance<py::dict>(feeds[i])) {
        raise_status(invalid_argument("input_feeds[", i, "]: expected a dict of input name -> numpy array, got ",
                                      std::string(py::str(py::type::of(feeds[i]).attr("__name__")))));
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
      else raise_status(invalid_argument("create_stream: unknown option '", key, "'"));
    }
    stream_ = unwrap(Stream::create(session.shared(), o));
  }

  py::list process(const py::object& chunk) {
    std::vector<py::object> keep;
    Tensor t = tensor_from_array("chunk of stream '" + stream_->name() + "'", chunk, keep);
    Expected<std::vector<Tensor>> r = Status();
    {
      py::gil_scoped_release release;
      r = stream_->process(t);
    }
    return arrays_of(unwrap(std::move(r)));
  }
  py::list flush() {
    Expected<std::vector<Tensor>> r = Status();
    {
      py::gil_scoped_release release;
      r = stream_->flush();
    }
    return arrays_of(unwrap(std::move(r)));
  }
  void reset() { stream_->reset(); }
  void close() { stream_->close(); }
  std::string name() const { return stream_->name(); }
  std::string input_name() const { return stream_->input_name(); }
  int64_t window() const { return stream_->window(); }
  int64_t windows_run() const { return stream_->windows_run(); }
  std::map<std::string, std::string> state_pairs() const {
    std::map<std::string, std::string> m;
    for (const auto& p : stream_->state_pairs()) m[p.input] = p.output;
    return m;
  }

 private:
  std::unique_ptr<Stream> stream_;
};

// A Python callable held by a C++ stage: released with the GIL held, whoever drops it last.
struct PyCallable {
  py::object fn;
  ~PyCallable() {
    py::gil_scoped_acquire gil;
    fn = py::object();
  }
};

py::dict frame_to_python(const Frame& frame) {
  py::dict d;
  for (const auto& [name, t] : frame) d[py::str(name)] = array_from_tensor(t);
  return d;
}

// Frames outlive the call that made them: every tensor owns its memory.
Frame frame_from_python(const py::handle& obj, const std::string& what) {
  if (!py::isinstance<py::dict>(obj)) {
    raise_status(invalid_argument(what, ": expected a dict of name -> numpy array, got ",
                                  std::string(py::str(py::type::of(obj).attr("__name__")))));
  }
  Frame frame;
  std::vector<py::object> keep;
  for (auto item : obj.cast<py::dict>()) {
    std::string name = py::str(item.first);
    // Only arrays are tensors: a None, a list or an arbitrary object would otherwise become
    // an object array and pass as a string tensor.
    if (!py::isinstance<py::array>(item.second) && !py::isinstance<py::bytes>(item.second)) {
      raise_status(invalid_argument(what, ": entry '", name, "' is a ",
                                    std::string(py::str(py::type::of(item.second).attr("__name__"))),
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

// A session being compiled by the compiler actor.
class PySessionFuture {
 public:
  PySessionFuture(py::object model, const py::dict& options, const std::vector<std::string>& providers) {
    SessionOptions opts = options_from_dict(options);
    bool from_bytes = py::isinstance<py::bytes>(model);
    std::string source = from_bytes ? model.cast<std::string>() : std::string(py::str(model));
    future_ = create_session_async(std::move(source), from_bytes, opts, providers);
  }
  bool done() const { return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
  PySession result(double timeout_ms) {
    if (!future_.valid()) raise_status(make_status(StatusCode::kFail, "result() was already taken"));
    bool ready;
    {
      py::gil_scoped_release release;
      ready = future_.wait_for(std::chrono::duration<double, std::milli>(timeout_ms)) == std::future_status::ready;
    }
    if (!ready) raise_status(make_status(StatusCode::kDeadlineExceeded, "model still compiling after ", timeout_ms, " ms"));
    return PySession(unwrap(future_.get()));
  }

 private:
  std::future<SessionResult> future_;
};

// A model or a Python function served to other processes (pyflame_rt.serve).
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

 private:
  std::unique_ptr<StageServer> server_;
};

// A client of a served stage (pyflame_rt.RemoteStage).
class PyRemoteStage {
 public:
  PyRemoteStage(const std::string& host, uint16_t port, double timeout_ms) {
    py::gil_scoped_release release;
    remote_ = unwrap_released(RemoteStage::connect(host, port, std::chrono::milliseconds(static_cast<int64_t>(timeout_ms))));
  }
  py::dict call(const py::object& frame) const {
    Frame f = frame_from_python(frame, "frame");
    Expected<Frame> out = Status();
    {
      py::gil_scoped_release release;
      out = remote_->call(f);
    }
    return frame_to_python(unwrap(std::move(out)));
  }
  const std::string& name() const { return remote_->name(); }
  const std::string& address() const { return remote_->address(); }
  const std::vector<std::string>& inputs() const { return remote_->inputs(); }
  const std::vector<std::string>& outputs() const { return remote_->outputs(); }
  std::shared_ptr<RemoteStage> shared() const { return remote_; }

 private:
  // Raising needs the GIL; connect() ran without it.
  static std::shared_ptr<RemoteStage> unwrap_released(Expected<std::shared_ptr<RemoteStage>> e) {
    if (e.ok()) return std::move(e).value();
    py::gil_scoped_acquire gil;
    raise_status(e.status());
  }
  std::shared_ptr<RemoteStage> remote_;
};

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
    Expected<uint64_t> seq = Status();
    {
      py::gil_scoped_release release;
      seq = pipeline_->push(std::move(f), stream, std::chrono::milliseconds(static_cast<int64_t>(max_block_ms)));
    }
    return unwrap(std::move(seq));
  }

  // (stream, seq, outputs or None, (error kind, message) or None, dropped_at, latency_us)
  py::tuple pull(double timeout_ms) {
    Expected<PipelineResult> r = Status();
    {
      py::gil_scoped_release release;
      r = pipeline_->pull(std::chrono::milliseconds(static_cast<int64_t>(timeout_ms)));
    }
    PipelineResult res = unwrap(std::move(r));
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

}  // namespace

PYBIND11_MODULE(_pyflame_rt, m) {
  m.doc() = "PyFlameRT native core (use the pyflame_rt package, not this module)";
  // Exceptions that are not ours (a pybind11 cast of a user's value, an allocation, a library
  // throwing) reach users as pyflame_rt errors, never as bare RuntimeError/MemoryError.
  // Python errors already set (error_already_set) and pybind11's own Python exception types
  // are left to pybind11.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const py::error_already_set&) {
      throw;
    } catch (const py::cast_error& e) {  // a builtin_exception too: before the next handler
      raise_status(invalid_argument("argument of the wrong type: ", e.what()));
    } catch (const py::builtin_exception&) {
      throw;
    } catch (const std::bad_alloc&) {
      raise_status(make_status(StatusCode::kResourceExhausted, "out of memory"));
    } catch (const std::exception& e) {
      raise_status(make_status(StatusCode::kFail, "internal error: ", e.what()));
    }
  });
  py::class_<PySession>(m, "Session")
      .def(py::init<py::object, py::dict, std::vector<std::string>>(), py::arg("model"),
           py::arg("options"), py::arg("providers"))
      .def("run", &PySession::run, py::arg("output_names"), py::arg("feed"))
      .def("run_with_profiling", &PySession::run_with_profiling, py::arg("output_names"), py::arg("feed"))
      .def("inputs", &PySession::inputs)
      .def("outputs", &PySession::outputs)
      .def("providers", &PySession::providers)
      .def("warnings", &PySession::warnings)
      .def("compiled_from_cache", &PySession::compiled_from_cache)
      .def("graph_text", &PySession::graph_text)
      .def("fallback_nodes", &PySession::fallback_nodes)
      .def("end_profiling", &PySession::end_profiling);
  py::class_<PyBatcher>(m, "Batcher")
      .def(py::init<const PySession&, std::string, py::dict>(), py::arg("session"), py::arg("name"),
           py::arg("options"), py::keep_alive<1, 2>())
      .def("run", &PyBatcher::run, py::arg("output_names"), py::arg("feed"), py::arg("priority") = 0)
      .def("run_many", &PyBatcher::run_many, py::arg("output_names"), py::arg("feeds"), py::arg("priority") = 0)
      .def("stats", &PyBatcher::stats)
      .def("stop", &PyBatcher::stop);
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
      .def("state_pairs", &PyStream::state_pairs);
  py::class_<PySessionFuture>(m, "SessionFuture")
      .def(py::init<py::object, py::dict, std::vector<std::string>>(), py::arg("model"), py::arg("options"),
           py::arg("providers"))
      .def("done", &PySessionFuture::done)
      .def("result", &PySessionFuture::result, py::arg("timeout_ms"));
  py::class_<PyStageServer>(m, "StageServer")
      .def(py::init<std::string, py::object, std::string, uint16_t>(), py::arg("name"), py::arg("target"),
           py::arg("host"), py::arg("port"))
      .def("port", &PyStageServer::port)
      .def("name", &PyStageServer::name)
      .def("frames_served", &PyStageServer::frames_served)
      .def("frames_failed", &PyStageServer::frames_failed)
      .def("stop", &PyStageServer::stop);
  py::class_<PyRemoteStage>(m, "RemoteStage")
      .def(py::init<std::string, uint16_t, double>(), py::arg("host"), py::arg("port"), py::arg("timeout_ms"))
      .def("call", &PyRemoteStage::call, py::arg("frame"))
      .def("name", &PyRemoteStage::name)
      .def("address", &PyRemoteStage::address)
      .def("inputs", &PyRemoteStage::inputs)
      .def("outputs", &PyRemoteStage::outputs);
  py::class_<PyPipeline>(m, "Pipeline")
      .def(py::init<py::list, size_t>(), py::arg("stages"), py::arg("output_capacity"))
      .def("push", &PyPipeline::push, py::arg("frame"), py::arg("stream"), py::arg("max_block_ms"))
      .def("pull", &PyPipeline::pull, py::arg("timeout_ms"))
      .def("close", &PyPipeline::close)
      .def("stop", &PyPipeline::stop)
      .def("metrics", &PyPipeline::metrics);
  // (Pipeline, [partition info dicts]) for a model split into `partitions` stage actors.
  // (Pipeline, [partition info dicts]) for a model split into `partitions` stage actors; the
  // split and the compiles run on the compiler actor.
  m.def("partitioned_pipeline", [](py::object model, const py::dict& options, int partitions, size_t output_capacity) {
    SessionOptions opts = options_from_dict(options);
    bool from_bytes = py::isinstance<py::bytes>(model);
    std::string source = from_bytes ? model.cast<std::string>() : std::string(py::str(model));
    Expected<PartitionedModel> split = Status();
    {
      py::gil_scoped_release release;
      split = partition_model_async(std::move(source), from_bytes, partitions, opts).get();
    }
    PartitionedModel parted = unwrap(std::move(split));
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
  }, py::arg("model"), py::arg("options"), py::arg("partitions"), py::arg("output_capacity"));
  m.def("configure_actor_runtime", [](int threads) {
    Status st = configure_actor_runtime(threads);
    if (!st.ok()) raise_status(st);
  }, py::arg("threads"));
  m.def("actor_runtime_threads", &actor_runtime_threads);
  m.def("shutdown", [] {
    py::gil_scoped_release release;
    shutdown_actor_runtime();
  });
  m.attr("__version__") = "0.1.0";
}
