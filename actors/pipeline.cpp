#include "actors/pipeline.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <set>
#include <thread>

#include "actors/actor_messages.h"
#include "actors/actor_runtime.h"
#include "actors/pipeline_stage.h"
#include "actors/spawn_function_actor.h"
#include "devices/thread_limit.h"

namespace pyflame_rt {

Expected<Frame> select_entries(const Frame& frame, const std::vector<std::string>& names) {
  Frame picked;
  for (const std::string& name : names) {
    auto it = frame.find(name);
    if (it == frame.end()) {
      std::string have;
      for (const auto& [n, t] : frame) have += (have.empty() ? "'" : ", '") + n + "'";
      return invalid_argument("the frame has no entry for model input '", name, "' (frame entries: ",
                              have.empty() ? "none" : have, ")");
    }
    picked.emplace(name, it->second);
  }
  return picked;
}

StageSpec model_stage(std::string name, std::shared_ptr<const InferenceSession> session,
                      std::vector<std::string> after) {
  StageSpec spec;
  spec.name = std::move(name);
  spec.after = std::move(after);
  std::vector<std::string> inputs;
  for (const auto& in : session->inputs()) inputs.push_back(in.name);
  spec.fn = [session, inputs](const Frame& frame) -> Expected<Frame> {
    ASSIGN_OR_RETURN(Frame feeds, select_entries(frame, inputs));
    ASSIGN_OR_RETURN(std::vector<Tensor> outs, session->run({}, feeds));
    Frame out = frame;
    for (size_t i = 0; i < outs.size(); ++i) out[session->outputs()[i].name] = std::move(outs[i]);
    return out;
  };
  return spec;
}

struct Pipeline::Impl {
  std::vector<std::unique_ptr<StageRuntime>> stages;
  std::vector<std::string> names;
  std::vector<std::shared_ptr<BoundedChannel>> sources;  // inputs of the first stages
  std::shared_ptr<BoundedChannel> output;
  std::mutex mu;                      // guards next_seq, closed
  std::map<uint64_t, uint64_t> next_seq;
  bool closed = false;
  std::mutex done_mu;
  std::condition_variable done_cv;
  size_t running = 0;
  uint64_t owner = 0;

  void stage_finished() {
    std::lock_guard<std::mutex> lock(done_mu);
    --running;
    done_cv.notify_all();
  }
};

namespace {

Status check_stages(const std::vector<StageSpec>& stages) {
  if (stages.empty()) return invalid_argument("pipeline: expected at least one stage, got none");
  std::set<std::string> seen, consumed;
  for (const auto& s : stages) {
    if (s.name.empty()) return invalid_argument("pipeline: every stage needs a name");
    if (seen.count(s.name)) return invalid_argument("pipeline: stage name '", s.name, "' is used twice");
    if (s.capacity < 1) return invalid_argument("stage '", s.name, "': capacity: expected >= 1, got ", s.capacity);
    if (s.intra_op_threads < 0) {
      return invalid_argument("stage '", s.name, "': intra_op_threads: expected >= 0 (0 = a share of the cores), got ",
                              s.intra_op_threads);
    }
    for (const auto& up : s.after) {
      if (!seen.count(up)) {
        return invalid_argument("stage '", s.name, "': upstream '", up,
                                "' is not an earlier stage (stages are listed upstream first)");
      }
      consumed.insert(up);
    }
    seen.insert(s.name);
  }
  std::string sinks;
  size_t sink_count = 0;
  for (const auto& s : stages) {
    if (!consumed.count(s.name)) {
      sinks += (sinks.empty() ? "'" : ", '") + s.name + "'";
      ++sink_count;
    }
  }
  if (sink_count != 1) {
    return invalid_argument("pipeline: expected one final stage (join the branches), got ", sink_count, ": ", sinks);
  }
  return Status::OK();
}

}  // namespace

Expected<std::unique_ptr<Pipeline>> Pipeline::create(std::vector<StageSpec> specs, size_t output_capacity) {
  RETURN_IF_ERROR(check_stages(specs));
  auto impl = std::make_shared<Impl>();
  std::map<std::string, StageRuntime*> by_name;
  for (auto& spec : specs) {
    auto stage = std::make_unique<StageRuntime>();
    stage->spec = std::move(spec);
    const StageSpec& s = stage->spec;
    size_t n_inputs = s.after.empty() ? 1 : s.after.size();
    for (size_t i = 0; i < n_inputs; ++i) {
      auto channel = std::make_shared<BoundedChannel>(s.name, s.capacity, s.policy);
      stage->inputs.push_back(channel);
      if (s.after.empty()) impl->sources.push_back(channel);
      else by_name.at(s.after[i])->outputs.push_back(channel);
    }
    by_name[s.name] = stage.get();
    impl->names.push_back(s.name);
    impl->stages.push_back(std::move(stage));
  }
  impl->output = std::make_shared<BoundedChannel>("output", output_capacity, DropPolicy::kBlock);
  for (auto& stage : impl->stages) {
    if (stage->outputs.empty()) stage->outputs.push_back(impl->output);
  }
  // One detached actor (its own thread) per stage: stages overlap, and a slow model never
  // holds a scheduler worker.
  caf::actor_system& system = actor_runtime();
  impl->running = impl->stages.size();
  Impl* raw = impl.get();
  std::shared_ptr<Impl> keep = impl;  // a stage stuck past stop() still finds its state
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int share = std::max(1, cores / static_cast<int>(impl->stages.size()));
  for (auto& stage : impl->stages) {
    StageRuntime* st = stage.get();
    int threads = st->spec.intra_op_threads > 0 ? st->spec.intra_op_threads : share;
    auto actor = spawn_function_actor<caf::detached>(system, [st, keep, threads](caf::event_based_actor* self) -> caf::behavior {
      // The behavior holds `keep`: the spawn function is gone once the actor runs.
      return {[st, keep, threads, self](run_atom) {
        Impl* raw = keep.get();
        IntraOpThreadLimit limit(threads);
        run_stage_loop(*st);
        raw->stage_finished();
        self->quit();
      }};
    });
    caf::anon_send(actor, run_atom::value);
  }
  impl->owner = register_actor_owner([raw] {
    for (auto& s : raw->sources) s->abort();
    for (auto& st : raw->stages) for (auto& c : st->inputs) c->abort();
    raw->output->abort();
  });
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

Pipeline::Pipeline(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Pipeline::~Pipeline() {
  unregister_actor_owner(impl_->owner);
  stop();
}

Expected<uint64_t> Pipeline::push(Frame frame, uint64_t stream, std::chrono::milliseconds max_block) {
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->closed) return make_status(StatusCode::kUnavailable, "pipeline: push() after close()");
    seq = impl_->next_seq[stream]++;
  }
  Envelope e;
  e.stream = stream;
  e.seq = seq;
  e.frame = std::move(frame);
  e.pushed = std::chrono::steady_clock::now();
  std::string dropped_at;
  for (size_t i = 0; i < impl_->sources.size(); ++i) {
    bool last = i + 1 == impl_->sources.size();
    switch (impl_->sources[i]->push(last ? std::move(e) : e, max_block)) {
      case BoundedChannel::Push::kClosed:
        return make_status(StatusCode::kUnavailable, "pipeline: stage '", impl_->sources[i]->name(), "' is stopped");
      case BoundedChannel::Push::kTimedOut:
        if (dropped_at.empty()) dropped_at = impl_->sources[i]->name();
        break;
      case BoundedChannel::Push::kAccepted:
        break;
    }
  }
  if (!dropped_at.empty()) {
    return make_status(StatusCode::kDeadlineExceeded, "pipeline: stage '", dropped_at, "' input stayed full for ",
                       max_block.count(), " ms (policy block); frame ", seq, " of stream ", stream,
                       " was dropped");
  }
  return seq;
}

Expected<PipelineResult> Pipeline::pull(std::chrono::milliseconds timeout) {
  Envelope e;
  switch (impl_->output->pop_for(&e, timeout)) {
    case BoundedChannel::Wait::kTimeout:
      return make_status(StatusCode::kDeadlineExceeded, "pipeline: no result within ", timeout.count(), " ms");
    case BoundedChannel::Wait::kClosed:
      return make_status(StatusCode::kUnavailable, "pipeline: closed and drained, no more results");
    case BoundedChannel::Wait::kItem:
      break;
  }
  PipelineResult r;
  r.stream = e.stream;
  r.seq = e.seq;
  r.status = std::move(e.status);
  r.frame = std::move(e.frame);
  r.dropped_at = std::move(e.dropped_at);
  r.latency_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - e.pushed).count();
  return r;
}

void Pipeline::close() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->closed = true;
  }
  for (auto& s : impl_->sources) s->close();
}

bool Pipeline::stop(std::chrono::milliseconds grace) {
  close();
  for (auto& st : impl_->stages) for (auto& c : st->inputs) c->abort();
  impl_->output->abort();
  std::unique_lock<std::mutex> lock(impl_->done_mu);
  return impl_->done_cv.wait_for(lock, grace, [&] { return impl_->running == 0; });
}

std::vector<StageMetrics> Pipeline::metrics() const {
  std::vector<StageMetrics> out;
  for (const auto& st : impl_->stages) out.push_back(st->metrics());
  return out;
}

const std::vector<std::string>& Pipeline::stage_names() const { return impl_->names; }

}  // namespace pyflame_rt
