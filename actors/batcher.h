// Batcher: dynamic batching of concurrent requests for one model, through the batching actor.
//
//   auto batcher = Batcher::create(make_session_target(session, "resnet50"), opts);
//   std::future<BatchResult> f = (*batcher)->submit(feeds);        // from any thread
//   BatchResult r = (*batcher)->run(feeds);                        // submit + wait (deadline)
//
// The batching actor collects requests until max_batch_size are waiting, a preferred batch
// size is reached, or the oldest has waited batch_timeout_ms, then hands the batch to its
// device actor (one thread) and keeps collecting while that runs. A full queue rejects at
// once with kResourceExhausted; a request past its deadline is answered kDeadlineExceeded;
// a device actor that dies fails its batch with kUnavailable and is restarted.
#pragma once

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/batch_request.h"
#include "actors/batch_target.h"

namespace pyflame_rt {

struct BatchOptions {
  int max_batch_size = 8;
  double batch_timeout_ms = 2.0;           // longest a request waits for others to join it
  std::vector<int> preferred_batch_sizes;  // dispatched as soon as one can be formed
  int max_queue_size = 1024;               // waiting requests; more are rejected
  int64_t request_timeout_ms = 60000;      // every wait has a deadline
  // Batches run at once, each by its own device actor on its share of the cores (like
  // Triton's instance count): with 2, one batch computes while the next one forms.
  int device_actors = 1;

  Status validate() const;
};

struct BatchStats {
  uint64_t requests = 0;            // accepted
  uint64_t rejected_queue_full = 0;
  uint64_t rejected_invalid = 0;    // refused by feed validation
  uint64_t deadline_exceeded = 0;
  uint64_t failed = 0;              // answered with an error by the model or the supervisor
  uint64_t batches = 0;             // batches handed to the device actor
  uint64_t batched_requests = 0;    // requests in those batches
  uint64_t model_runs = 0;          // calls into the model
  uint64_t device_restarts = 0;
  int64_t queued = 0;               // waiting now
  double mean_batch_size() const { return batches ? double(batched_requests) / batches : 0.0; }
};

class Batcher {
 public:
  static Expected<std::shared_ptr<Batcher>> create(std::shared_ptr<const BatchTarget> target,
                                                   BatchOptions options = {});
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // `output_names` empty = every output. Higher priority is served first; FIFO within one.
  // Never blocks; errors (bad feed, full queue, stopped) come back through the future.
  std::future<BatchResult> submit(std::map<std::string, Tensor> feeds,
                                  const std::vector<std::string>& output_names = {}, int priority = 0);
  // The same, answered through `done` instead of a future (servers: no thread waits). `done`
  // runs exactly once, possibly before submit returns (a rejection); timeout_us > 0 replaces
  // request_timeout_ms as this request's deadline in the queue.
  void submit(std::map<std::string, Tensor> feeds, const std::vector<std::string>& output_names, int priority,
              BatchCallback done, int64_t timeout_us = 0);
  // submit() and wait, at most request_timeout_ms.
  BatchResult run(std::map<std::string, Tensor> feeds, const std::vector<std::string>& output_names = {},
                  int priority = 0);
  // Waits for a future from submit() until this batcher's deadline.
  BatchResult wait(std::future<BatchResult>& future) const;

  BatchStats stats() const;
  const BatchOptions& options() const;
  const std::string& model_name() const;
  // Answers everything still queued with kUnavailable and stops the actors. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit Batcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyflame_rt
