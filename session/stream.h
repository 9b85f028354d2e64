// Stream: a model fed chunk by chunk, with windows, overlap and hidden state.
//
//   StreamOptions o;  o.chunk_size = 16000;  o.overlap = 1600;
//   auto stream = Stream::create(session, o);
//   for (const Tensor& chunk : audio) auto out = (*stream)->process(chunk);
//   auto tail = (*stream)->flush();   // end of stream: the last partial window
//
// Windows: with chunk_size > 0 (or a model whose time dim is fixed) samples are cut into
// windows of chunk_size that overlap by `overlap`; with chunk_size == 0 each chunk is run as
// it comes, after the last `overlap` samples of the previous one. Outputs that follow the
// time axis lose the repeated overlap (and flush padding), so nothing is counted twice; other
// outputs give one row per window along axis 0.
// State: with stateful=true, outputs that carry the next value of an input (h0 <- hn, found
// from names and shapes or given in state_map) are fed back; the initial value is zeros or
// `initial_state`. process() runs on the caller's thread: a stream is one sequence, so its
// windows run in order, and a call pays no actor hop. Several streams on one session run
// concurrently; calls on one stream are serialised.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "session/inference_session.h"
#include "streams/state_map.h"
#include "streams/window_assembler.h"

namespace pyflame_rt {

struct StreamOptions {
  int64_t chunk_size = 0;  // window length along the time axis; 0 = each chunk as it comes
  int64_t overlap = 0;     // samples shared by consecutive windows
  bool stateful = true;
  std::map<std::string, Tensor> initial_state;   // state input -> first value (default zeros)
  std::map<std::string, std::string> state_map;  // state input -> output (default: detected)
  std::string input_name;  // the chunked input, when the model has several non-state inputs
  int time_axis = -1;      // -1: axis 1 for inputs of rank >= 2, else 0
  std::vector<std::string> time_aligned_outputs;  // force these outputs to be trimmed
  std::string name;        // names the stream in errors (default "stream-<n>")
  // A stream given no chunk for this long (its producer stopped without flush/close) is
  // freed: its buffered samples and state go, later calls fail with kDeadlineExceeded, and
  // the freeing is counted (idle_expired(), LimitCounters::streams_idle_expired). 0 = never.
  int64_t idle_timeout_ms = 0;
};

class Stream {
 public:
  static Expected<std::unique_ptr<Stream>> create(std::shared_ptr<const InferenceSession> session,
                                                  StreamOptions options = {});
  ~Stream();

  // Every model output for the windows this chunk completed; empty when none completed.
  Expected<std::vector<Tensor>> process(const Tensor& chunk);
  // End of stream: runs what is left (zero-padded to a fixed window), then resets.
  Expected<std::vector<Tensor>> flush();
  // Back to the initial state, nothing buffered.
  void reset();
  // Later calls fail; idempotent.
  void close();

  const std::string& name() const { return options_.name; }
  const std::vector<StatePair>& state_pairs() const { return pairs_; }
  const std::string& input_name() const { return data_input_.name; }
  int64_t window() const { return assembler_.window(); }
  int64_t windows_run() const;
  // True once idle_timeout_ms freed the stream.
  bool idle_expired() const { return idle_expired_.load(); }
  // Frees the stream when it has been idle past idle_timeout_ms at `now` (the reaper's call;
  // a stream busy in a call is not idle). True when it did.
  bool expire_if_idle(std::chrono::steady_clock::time_point now);

 private:
  Stream(std::shared_ptr<const InferenceSession> session, StreamOptions options, ValueInfo data_input,
         std::vector<StatePair> pairs, int64_t window, size_t axis);
  Status check_chunk(const Tensor& chunk);
  Status ensure_state(const Tensor& chunk);
  Expected<std::vector<Tensor>> run_windows(const std::vector<Window>& windows);
  Status error_context(Status st) const;
  Status check_open(const char* call) const;  // with mu_ held

  std::shared_ptr<const InferenceSession> session_;
  StreamOptions options_;
  ValueInfo data_input_;
  std::vector<StatePair> pairs_;
  std::vector<bool> aligned_;      // per output: follows the time axis
  std::vector<bool> is_state_;     // per output: feeds a state input
  std::mutex mu_;
  WindowAssembler assembler_;
  Dims chunk_dims_;                // dims of the first chunk (time dim excluded from checks)
  std::map<std::string, Tensor> state_;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
  std::atomic<bool> idle_expired_{false};
  std::atomic<bool> holds_slot_{true};  // of the session's max_streams; given back once (close, expiry, end)
  void release_slot();
  std::atomic<int64_t> windows_run_{0};
};

}  // namespace pyflame_rt
