// SequenceTable: stateful sequences served over gRPC (ModelStreamInfer) and ZeroMQ.
//
//   SequenceTable sequences(repository, {});
//   InferRequest req = ...;               // req.sequence = {id "cam-7", start, end}
//   sequences.infer(std::move(req), [](Expected<InferResponse> r) { /* hand to the I/O thread */ });
//
// A sequence id (per model) selects one session Stream (session/stream.h): its hidden state
// (h <- h_out) carries from one request to the next, as Triton's implicit state does.
// `sequence_start` resets it, `sequence_end` flushes it and frees it (the next request of the
// id begins a new sequence, even one submitted before the end has run), and a sequence idle
// longer than idle_timeout is freed (Triton's max_sequence_idle_microseconds, default 1 s) and
// counted (stats().expired, the server event `sequences_expired`); a later request on it
// without sequence_start is kDeadlineExceeded naming the timeout (its state is gone: running
// it as a new sequence would answer from a reset state without saying so). The first request
// of an id never seen starts it. Requests of one sequence run in the order
// they were submitted, on one worker thread picked by the id's hash: never on the caller's
// (an I/O or completion thread), and never two at once, which is what a stream needs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/model_repository.h"

namespace pyflame_rt::net {

struct SequenceOptions {
  std::chrono::milliseconds idle_timeout{1000};
  int workers = 2;              // threads running sequence requests (one sequence sticks to one)
  size_t max_sequences = 4096;  // open at once; a new one beyond this is kResourceExhausted

  Status validate() const;
};

struct SequenceStats {
  uint64_t started = 0;
  uint64_t ended = 0;     // by sequence_end
  uint64_t expired = 0;   // freed after idle_timeout
  uint64_t requests = 0;  // answered, ok or not
  size_t active = 0;
};

class SequenceTable {
 public:
  SequenceTable(ModelRepository& repository, SequenceOptions options = {});
  ~SequenceTable();
  SequenceTable(const SequenceTable&) = delete;
  SequenceTable& operator=(const SequenceTable&) = delete;

  // request.sequence must be set. `done` runs once, on a worker (or here, for a rejection).
  void infer(InferRequest request, InferCallback done);
  SequenceStats stats() const;
  const SequenceOptions& options() const { return options_; }
  // Answers what is queued with kUnavailable and joins the threads. Idempotent.
  void stop();

 private:
  struct Sequence;
  struct Worker;
  using Clock = std::chrono::steady_clock;

  void run(const std::shared_ptr<Sequence>& seq, InferRequest& request, const InferCallback& done);
  Expected<InferResponse> process(Sequence& seq, InferRequest& request);
  void expire_idle();
  void reaper_loop();

  ModelRepository& repository_;
  SequenceOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Sequence>> sequences_;  // "<model>\n<id>" -> sequence
  // Keys of sequences freed for idleness, oldest first (at most max_sequences remembered).
  std::map<std::string, uint64_t> expired_keys_;
  std::deque<std::pair<std::string, uint64_t>> expired_order_;
  uint64_t expiries_ = 0;
  SequenceStats stats_;
  bool stopped_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::condition_variable reaper_cv_;
  std::thread reaper_;
};

}  // namespace pyflame_rt::net
