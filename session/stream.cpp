#include "session/stream.h"

#include <algorithm>
#include <atomic>

#include "session/limit_counters.h"
#include "session/stream_reaper.h"
#include "streams/tensor_axis.h"

namespace pyflame_rt {
namespace {

std::vector<ValueInfo> value_infos(const std::vector<TensorInfo>& infos) {
  std::vector<ValueInfo> out;
  for (const auto& i : infos) out.push_back({i.name, i.dtype, i.shape});
  return out;
}

std::string default_name() {
  static std::atomic<int> counter{0};
  return "stream-" + std::to_string(++counter);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Expected<std::unique_ptr<Stream>> Stream::create(std::shared_ptr<const InferenceSession> session,
                                                 StreamOptions options) {
  if (options.name.empty()) options.name = default_name();
  const std::string where = "stream '" + options.name + "'";
  if (options.chunk_size < 0) return invalid_argument(where, ": chunk_size: expected >= 0, got ", options.chunk_size);
  if (options.overlap < 0) return invalid_argument(where, ": overlap: expected >= 0, got ", options.overlap);
  if (options.chunk_size > 0 && options.overlap >= options.chunk_size) {
    return invalid_argument(where, ": overlap: expected less than chunk_size=", options.chunk_size, ", got ",
                            options.overlap);
  }
  std::vector<ValueInfo> inputs = value_infos(session->inputs());
  std::vector<ValueInfo> outputs = value_infos(session->outputs());
  std::vector<StatePair> pairs;
  if (options.stateful) {
    Expected<std::vector<StatePair>> found = find_state_pairs(inputs, outputs, options.state_map);
    if (!found.ok()) return found.status().with_context(where + ": ");
    pairs = std::move(found).value();
  } else if (!options.state_map.empty() || !options.initial_state.empty()) {
    return invalid_argument(where, ": state_map/state given but stateful=false");
  }
  auto is_state_input = [&](const std::string& n) {
    return std::any_of(pairs.begin(), pairs.end(), [&](const StatePair& p) { return p.input == n; });
  };
  // The chunked input: the one input that is not state.
  std::vector<const ValueInfo*> data;
  for (const auto& in : inputs) if (!is_state_input(in.name)) data.push_back(&in);
  const ValueInfo* chosen = nullptr;
  if (!options.input_name.empty()) {
    for (const auto* d : data) if (d->name == options.input_name) chosen = d;
    if (!chosen) return invalid_argument(where, ": input_name: '", options.input_name, "' is not a non-state input of the model");
  } else if (data.size() == 1) {
    chosen = data[0];
  } else {
    std::string names;
    for (const auto* d : data) names += (names.empty() ? "'" : ", '") + d->name + "'";
    return invalid_argument(where, ": expected one chunked input, the model has ", data.size(), " non-state inputs (",
                            names, "); name one with input_name");
  }
  if (chosen->dtype == DType::kString) return not_implemented(where, ": string inputs cannot be streamed");
  for (const auto& [name, t] : options.initial_state) {
    if (!is_state_input(name)) return invalid_argument(where, ": state: '", name, "' is not a state input of the model");
  }
  size_t rank = chosen->shape.rank_known ? chosen->shape.rank() : 0;
  if (!chosen->shape.rank_known || rank == 0) {
    return invalid_argument(where, ": input '", chosen->name, "' needs a known rank >= 1 to be streamed, got ",
                            chosen->shape.to_string());
  }
  int axis = options.time_axis < 0 ? (rank >= 2 ? 1 : 0) : options.time_axis;
  if (axis >= static_cast<int>(rank)) {
    return invalid_argument(where, ": time_axis: expected < rank ", rank, " of input '", chosen->name, "', got ", axis);
  }
  // A model with a fixed time dim consumes fixed windows of that length.
  int64_t window = options.chunk_size;
  const Dim& time_dim = chosen->shape.dims[axis];
  if (time_dim.known()) {
    if (window != 0 && window != time_dim.value) {
      return invalid_argument(where, ": chunk_size: the model's input '", chosen->name, "' has a fixed window of ",
                              time_dim.value, " along axis ", axis, ", got chunk_size=", window);
    }
    window = time_dim.value;
    if (options.overlap >= window) {
      return invalid_argument(where, ": overlap: expected less than the window ", window, ", got ", options.overlap);
    }
  }
  if (options.idle_timeout_ms < 0) {
    return invalid_argument(where, ": idle_timeout_ms: expected >= 0 (0 = never), got ", options.idle_timeout_ms);
  }
  RETURN_IF_ERROR(session->acquire_stream_slot(options.name));
  std::unique_ptr<Stream> stream(new Stream(std::move(session), std::move(options), *chosen, std::move(pairs), window,
                                            static_cast<size_t>(axis)));
  if (stream->options_.idle_timeout_ms > 0) {
    StreamReaper::global().add(stream.get(), std::chrono::milliseconds(stream->options_.idle_timeout_ms));
  }
  return stream;
}

Stream::Stream(std::shared_ptr<const InferenceSession> session, StreamOptions options, ValueInfo data_input,
               std::vector<StatePair> pairs, int64_t window, size_t axis)
    : session_(std::move(session)), options_(std::move(options)), data_input_(std::move(data_input)),
      pairs_(std::move(pairs)), assembler_(window, options_.overlap, axis) {
  const Dim& in_time = data_input_.shape.dims[axis];
  for (const auto& out : session_->outputs()) {
    bool state = std::any_of(pairs_.begin(), pairs_.end(), [&](const StatePair& p) { return p.output == out.name; });
    bool aligned = contains(options_.time_aligned_outputs, out.name);
    if (!state && out.shape.rank_known && out.shape.rank() > axis) {
      const Dim& d = out.shape.dims[axis];
      aligned = aligned || (!d.symbol.empty() && d.symbol == in_time.symbol) ||
                (d.known() && in_time.known() && d.value == in_time.value &&
                 out.shape.rank() == data_input_.shape.rank());
    }
    is_state_.push_back(state);
    aligned_.push_back(aligned);
  }
}

Stream::~Stream() {
  if (options_.idle_timeout_ms > 0) StreamReaper::global().remove(this);
  release_slot();
}

void Stream::release_slot() {
  if (holds_slot_.exchange(false)) session_->release_stream_slot();
}

Status Stream::check_open(const char* call) const {
  if (idle_expired_.load()) {
    return make_status(StatusCode::kDeadlineExceeded, "stream '", options_.name, "': ", call, " after the stream was freed: ",
                       "no chunk came for longer than StreamOptions.idle_timeout_ms (", options_.idle_timeout_ms,
                       " ms), its buffered samples and state are gone; create a new stream");
  }
  if (closed_) return make_status(StatusCode::kUnavailable, "stream '", options_.name, "': ", call, " after close()");
  return Status::OK();
}

bool Stream::expire_if_idle(std::chrono::steady_clock::time_point now) {
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return false;  // in a call: not idle
  if (closed_ || options_.idle_timeout_ms <= 0 ||
      now - last_used_ <= std::chrono::milliseconds(options_.idle_timeout_ms)) {
    return false;
  }
  closed_ = true;
  idle_expired_ = true;
  assembler_.reset();
  state_.clear();
  chunk_dims_.clear();
  release_slot();
  count_limit(nullptr, &LimitCounters::streams_idle_expired);
  return true;
}

Status Stream::error_context(Status st) const { return st.with_context("stream '" + options_.name + "': "); }

Status Stream::check_chunk(const Tensor& chunk) {
  const std::string what = "chunk for input '" + data_input_.name + "'";
  size_t axis = assembler_.time_axis();
  // The time axis may take any length; everything else as the model says, and as the first chunk.
  RETURN_IF_ERROR(check_tensor_against(data_input_.dtype, data_input_.shape, chunk, what, static_cast<int>(axis)));
  for (size_t i = 0; i < chunk.rank() && !chunk_dims_.empty(); ++i) {
    if (i != axis && chunk_dims_[i] != chunk.dim(i)) {
      return invalid_argument(what, ": dimension ", i, " must stay ", chunk_dims_[i], " as in the stream's first chunk ",
                              dims_to_string(chunk_dims_), ", got ", chunk.dim(i), " (shape ",
                              dims_to_string(chunk.dims()), "); reset() to start another sequence");
    }
  }
  return Status::OK();
}

// The first value of every state input: given, or zeros with symbolic dims taken from the
// chunk (a state [layers, batch, hidden] shares "batch" with the chunk [batch, time, features]).
Status Stream::ensure_state(const Tensor& chunk) {
  for (const auto& pair : pairs_) {
    if (state_.count(pair.input)) continue;
    const TensorInfo* info = nullptr;
    for (const auto& i : session_->inputs()) if (i.name == pair.input) info = &i;
    auto given = options_.initial_state.find(pair.input);
    if (given != options_.initial_state.end()) {
      RETURN_IF_ERROR(session_->validate_feeds({{data_input_.name, chunk}, {pair.input, given->second}})
                          .with_context("state '" + pair.input + "': "));
      state_[pair.input] = given->second.clone();
      continue;
    }
    if (!info->shape.rank_known) {
      return invalid_argument("state '", pair.input, "': its shape is unknown; give its first value with state=");
    }
    Dims dims;
    for (const Dim& d : info->shape.dims) {
      int64_t v = d.value;
      for (size_t i = 0; !d.known() && i < data_input_.shape.rank(); ++i) {
        if (!d.symbol.empty() && data_input_.shape.dims[i].symbol == d.symbol) v = chunk.dim(i);
      }
      if (v < 0) {
        return invalid_argument("state '", pair.input, "': cannot size dims ", info->shape.to_string(),
                                " from the chunk; give its first value with state=");
      }
      dims.push_back(v);
    }
    state_[pair.input] = Tensor(info->dtype, dims);
  }
  return Status::OK();
}

Expected<std::vector<Tensor>> Stream::run_windows(const std::vector<Window>& windows) {
  const size_t axis = assembler_.time_axis();
  const auto& outs = session_->outputs();
  std::vector<std::vector<Tensor>> per_output(outs.size());
  for (const Window& w : windows) {
    std::map<std::string, Tensor> feeds = state_;
    feeds[data_input_.name] = w.samples;
    ASSIGN_OR_RETURN(std::vector<Tensor> result, session_->run({}, feeds));
    ++windows_run_;
    int64_t in_len = w.samples.dim(axis);
    for (size_t i = 0; i < outs.size(); ++i) {
      Tensor t = result[i];
      if (aligned_[i] && t.rank() > axis && in_len > 0) {
        // Drop the frames that repeat the previous window and those made of padding.
        int64_t out_len = t.dim(axis);
        int64_t front = w.repeated_front * out_len / in_len;
        int64_t back = w.padded_back * out_len / in_len;
        t = slice_along(t, axis, front, std::max<int64_t>(0, out_len - front - back));
      }
      per_output[i].push_back(std::move(t));
    }
    for (const auto& pair : pairs_) {
      for (size_t i = 0; i < outs.size(); ++i) if (outs[i].name == pair.output) state_[pair.input] = result[i];
    }
  }
  std::vector<Tensor> joined;
  if (windows.empty()) return joined;
  for (size_t i = 0; i < outs.size(); ++i) {
    auto& parts = per_output[i];
    if (parts.size() == 1 || is_state_[i]) joined.push_back(parts.back());
    else if (aligned_[i]) joined.push_back(concat_along(parts, axis));
    else if (parts.front().rank() == 0) joined.push_back(parts.back());
    else joined.push_back(concat_along(parts, 0));  // one row (group) per window
  }
  return joined;
}

Expected<std::vector<Tensor>> Stream::process(const Tensor& chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(check_open("process()"));
  last_used_ = std::chrono::steady_clock::now();
  if (Status st = check_chunk(chunk); !st.ok()) return error_context(st);
  if (chunk_dims_.empty()) chunk_dims_ = chunk.dims();
  if (Status st = ensure_state(chunk); !st.ok()) return error_context(st);
  std::vector<Window> windows = assembler_.push(chunk);
  Expected<std::vector<Tensor>> out = run_windows(windows);
  if (!out.ok()) return error_context(out.status());
  return out;
}

Expected<std::vector<Tensor>> Stream::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(check_open("flush()"));
  last_used_ = std::chrono::steady_clock::now();
  bool fixed = data_input_.shape.dims[assembler_.time_axis()].known();
  std::vector<Window> windows = assembler_.flush(fixed);
  Expected<std::vector<Tensor>> out = run_windows(windows);
  state_.clear();
  chunk_dims_.clear();
  if (!out.ok()) return error_context(out.status());
  return out;
}

void Stream::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  last_used_ = std::chrono::steady_clock::now();
  assembler_.reset();
  state_.clear();
  chunk_dims_.clear();
}

void Stream::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  state_.clear();
  release_slot();
}

int64_t Stream::windows_run() const { return windows_run_; }

}  // namespace pyflame_rt
