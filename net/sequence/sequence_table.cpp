#include "net/sequence/sequence_table.h"

#include <algorithm>

#include "session/stream.h"

namespace pyflame_rt::net {

struct SequenceTable::Sequence {
  std::string key;
  std::string id;
  std::shared_ptr<ServedModel> model;  // the version found when the sequence started
  std::unique_ptr<Stream> stream;      // created by the first request, on the worker
  Clock::time_point last_used = Clock::now();
  int pending = 0;          // requests submitted and not yet answered (never expire those)
  // A request with sequence_end was submitted (set by infer(), under mu_): the next request of
  // the id begins a new sequence, and this one is freed once nothing is pending. Decided when
  // the request is submitted, not when its worker has run it: a start+end request followed at
  // once by another on the same id (one-shot sequences) found this one not yet ended, joined
  // it and was refused as "already ended".
  bool end_submitted = false;
  bool ended = false;       // the worker ran sequence_end (only the worker reads or writes it)
};

// One thread and its FIFO. A sequence always lands on the same worker, so its requests run
// in submission order and one at a time; different sequences run in parallel.
struct SequenceTable::Worker {
  struct Task {
    std::shared_ptr<Sequence> sequence;
    InferRequest request;
    InferCallback done;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> tasks;
  bool stopping = false;
  std::thread thread;
};

Status SequenceOptions::validate() const {
  if (idle_timeout.count() <= 0) {
    return invalid_argument("sequence idle_timeout: expected > 0 ms, got ", idle_timeout.count());
  }
  if (workers < 1 || workers > 256) return invalid_argument("sequence workers: expected 1..256, got ", workers);
  if (max_sequences < 1) return invalid_argument("max_sequences: expected >= 1, got 0");
  return Status::OK();
}

SequenceTable::SequenceTable(ModelRepository& repository, SequenceOptions options)
    : repository_(repository), options_(std::move(options)) {
  options_.workers = std::clamp(options_.workers, 1, 256);
  for (int i = 0; i < options_.workers; ++i) {
    auto worker = std::make_unique<Worker>();
    Worker* w = worker.get();
    worker->thread = std::thread([this, w] {
      for (;;) {
        Worker::Task task;
        {
          std::unique_lock<std::mutex> lock(w->mu);
          w->cv.wait(lock, [w] { return w->stopping || !w->tasks.empty(); });
          if (w->tasks.empty()) return;  // stopping and drained
          task = std::move(w->tasks.front());
          w->tasks.pop_front();
        }
        run(task.sequence, task.request, task.done);
      }
    });
    workers_.push_back(std::move(worker));
  }
  reaper_ = std::thread([this] { reaper_loop(); });
}

SequenceTable::~SequenceTable() { stop(); }

void SequenceTable::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  for (auto& w : workers_) {
    std::deque<Worker::Task> left;
    {
      std::lock_guard<std::mutex> lock(w->mu);
      w->stopping = true;
      left.swap(w->tasks);
    }
    w->cv.notify_all();
    for (auto& task : left) {
      task.done(make_status(StatusCode::kUnavailable, "sequence '", task.sequence->id,
                            "': the server is stopping; the request did not run"));
    }
    if (w->thread.joinable()) w->thread.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  sequences_.clear();
  stats_.active = 0;
}

void SequenceTable::infer(InferRequest request, InferCallback done) {
  if (!request.sequence) {
    done(invalid_argument("model '", request.model_name, "': a sequence request needs a sequence_id parameter"));
    return;
  }
  auto model = repository_.find(request.model_name, request.model_version);
  if (!model.ok()) {
    repository_.metrics().record_server_failure(failure_reason(model.status().code()));
    done(model.status());
    return;
  }
  if (!(*model)->session()) {
    (*model)->metrics().record_failure(failure_reason(StatusCode::kInvalidArgument));
    done(invalid_argument("model '", request.model_name,
                          "' is a pipeline: sequences (sequence_id) need a model with a session"));
    return;
  }
  const std::string key = request.model_name + "\n" + request.sequence->id;
  std::shared_ptr<Sequence> seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) {
      done(make_status(StatusCode::kUnavailable, "sequence '", request.sequence->id, "': the server is stopping"));
      return;
    }
    auto it = sequences_.find(key);
    if (it == sequences_.end() || it->second->end_submitted) {
      if (auto gone = expired_keys_.find(key); gone != expired_keys_.end()) {
        if (!request.sequence->start) {
          (*model)->metrics().record_failure(failure_reason(StatusCode::kDeadlineExceeded));
          done(make_status(StatusCode::kDeadlineExceeded, "sequence '", request.sequence->id, "' of model '",
                           request.model_name, "' was freed after ", options_.idle_timeout.count(),
                           " ms without a request (the sequence idle timeout); its state is gone: send sequence_start "
                           "to begin it again"));
          return;
        }
        expired_keys_.erase(gone);  // started again: a new sequence
      }
      if (sequences_.size() >= options_.max_sequences) {
        (*model)->metrics().record_failure(failure_reason(StatusCode::kResourceExhausted));
        done(make_status(StatusCode::kResourceExhausted, "sequence '", request.sequence->id, "' of model '",
                         request.model_name, "': ", sequences_.size(), " sequences are open, the limit is ",
                         options_.max_sequences, "; end some (sequence_end) or wait for idle ones to expire"));
        return;
      }
      seq = std::make_shared<Sequence>();
      seq->key = key;
      seq->id = request.sequence->id;
      seq->model = *model;
      sequences_[key] = seq;
      stats_.active = sequences_.size();
    } else {
      seq = it->second;
    }
    ++seq->pending;
    seq->last_used = Clock::now();
    if (request.sequence->end) seq->end_submitted = true;
  }
  Worker& w = *workers_[std::hash<std::string>()(key) % workers_.size()];
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.tasks.push_back({std::move(seq), std::move(request), std::move(done)});
  }
  w.cv.notify_one();
}

void SequenceTable::run(const std::shared_ptr<Sequence>& seq, InferRequest& request, const InferCallback& done) {
  ModelMetrics& metrics = seq->model->metrics();
  metrics.enter();
  const auto started = Clock::now();
  Expected<InferResponse> result = process(*seq, request);
  const auto finished = Clock::now();
  metrics.leave();
  auto us = [](Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); };
  if (result.ok()) {
    metrics.record_execution(1);
    metrics.record_success(us(finished - request.received), us(started - request.received), us(finished - started), 1);
  } else {
    metrics.record_failure(failure_reason(result.status().code()));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    --seq->pending;
    seq->last_used = finished;
    ++stats_.requests;
    auto it = sequences_.find(seq->key);
    if (seq->end_submitted && seq->pending == 0 && it != sequences_.end() && it->second == seq) {
      sequences_.erase(it);
      stats_.active = sequences_.size();
    }
  }
  done(std::move(result));
}

Expected<InferResponse> SequenceTable::process(Sequence& seq, InferRequest& request) {
  const ServedModel& model = *seq.model;
  const std::string what = "sequence '" + seq.id + "' of model '" + model.name() + "'";
  if (seq.ended) return make_status(StatusCode::kUnavailable, what, ": already ended (sequence_end)");
  if (request.sequence->start && seq.stream) seq.stream->reset();
  if (!seq.stream) {
    StreamOptions options;
    options.name = what;
    ASSIGN_OR_RETURN(seq.stream, Stream::create(model.session(), options));
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.started;
  }
  Stream& stream = *seq.stream;
  if (request.inputs.size() != 1 || request.inputs[0].name != stream.input_name()) {
    std::string got;
    for (const auto& in : request.inputs) got += (got.empty() ? "'" : ", '") + in.name + "'";
    std::string state;
    for (const auto& pair : stream.state_pairs()) state += (state.empty() ? "'" : ", '") + pair.input + "'";
    return invalid_argument(what, ": expected one input '", stream.input_name(), "' (the server carries the state",
                            state.empty() ? "" : " inputs " + state, "), got [", got, "]");
  }
  const auto& model_outputs = model.session()->outputs();
  std::vector<size_t> wanted;
  for (const auto& out : request.outputs) {
    auto it = std::find_if(model_outputs.begin(), model_outputs.end(),
                           [&](const TensorInfo& info) { return info.name == out.name; });
    if (it == model_outputs.end()) {
      std::string known;
      for (const auto& info : model_outputs) known += (known.empty() ? "'" : ", '") + info.name + "'";
      return invalid_argument(what, ": requested output '", out.name, "' is not an output of the model (",
                              known, ")");
    }
    wanted.push_back(static_cast<size_t>(it - model_outputs.begin()));
  }
  ASSIGN_OR_RETURN(std::vector<Tensor> outputs, stream.process(request.inputs[0].tensor));
  if (request.sequence->end) {
    seq.ended = true;
    auto tail = stream.flush();
    stream.close();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.ended;
    }
    if (!tail.ok()) return tail.status();
    // With windows of chunk_size 0 (what a sequence uses) every chunk ran as it came and the
    // flush has nothing left; a model with a fixed window may leave a padded last one.
    if (outputs.empty()) outputs = std::move(*tail);
  }
  InferResponse response;
  response.model_name = model.name();
  response.model_version = model.version();
  response.id = request.id;
  response.parameters["sequence_id"] = seq.id;
  if (outputs.empty()) return response;  // no window completed yet: an answer without outputs
  if (wanted.empty()) {
    for (size_t i = 0; i < outputs.size(); ++i) wanted.push_back(i);
  }
  for (size_t i : wanted) response.outputs.push_back({model_outputs[i].name, outputs[i], {}});
  return response;
}

void SequenceTable::expire_idle() {
  std::vector<std::shared_ptr<Sequence>> expired;  // destroyed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  for (auto it = sequences_.begin(); it != sequences_.end();) {
    const Sequence& s = *it->second;
    if (s.pending == 0 && now - s.last_used > options_.idle_timeout) {
      expired.push_back(it->second);
      if (!s.end_submitted) {  // an ended sequence is not waiting for more
        expired_keys_[it->first] = ++expiries_;
        expired_order_.emplace_back(it->first, expiries_);
      }
      it = sequences_.erase(it);
      ++stats_.expired;
    } else {
      ++it;
    }
  }
  while (expired_order_.size() > options_.max_sequences) {
    auto& [key, n] = expired_order_.front();
    if (auto k = expired_keys_.find(key); k != expired_keys_.end() && k->second == n) expired_keys_.erase(k);
    expired_order_.pop_front();
  }
  stats_.active = sequences_.size();
  if (!expired.empty()) repository_.metrics().count_event("sequences_expired", expired.size());
}

void SequenceTable::reaper_loop() {
  const auto period = std::clamp<std::chrono::milliseconds>(options_.idle_timeout / 4, std::chrono::milliseconds(5),
                                                            std::chrono::milliseconds(250));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopped_) {
    reaper_cv_.wait_for(lock, period, [this] { return stopped_; });
    if (stopped_) return;
    lock.unlock();
    expire_idle();
    lock.lock();
  }
}

SequenceStats SequenceTable::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace pyflame_rt::net
