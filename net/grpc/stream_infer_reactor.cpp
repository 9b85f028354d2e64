#include "net/grpc/stream_infer_reactor.h"

#include "net/grpc/grpc_codec.h"

namespace pyflame_rt::net {

struct StreamInferReactor::State {
  std::mutex mu;
  StreamInferReactor* reactor = nullptr;  // valid until OnDone(), which follows Finish()
  uint64_t next_slot = 0;                 // slot of the next request read
  uint64_t next_write = 0;                // slot whose answer is written next
  std::map<uint64_t, inference::ModelStreamInferResponse> ready;  // answered, not yet written
  inference::ModelStreamInferResponse in_write;                   // the one being written
  bool writing = false;
  bool reads_done = false;
  bool read_paused = false;  // too many answers wait for the client: no StartRead until they drain
  uint64_t max_unwritten = 256;
  bool finished = false;  // Finish() called or decided: nothing more is written
  bool stopping = false;  // the server is stopping: finish as soon as no write is in flight
  uint64_t pending_id = 0;
};

StreamInferReactor::StreamInferReactor(InferenceService& service, grpc::CallbackServerContext*)
    : service_(service), state_(std::make_shared<State>()) {
  state_->reactor = this;
  state_->max_unwritten = static_cast<uint64_t>(service_.max_unwritten_per_stream());
  if (!service_.try_enter()) {
    state_->finished = true;
    Finish(service_.too_many_rpcs());
    return;
  }
  entered_ = true;
  std::weak_ptr<State> weak = state_;
  state_->pending_id = service_.add_pending([weak] {
    auto s = weak.lock();
    if (!s) return;
    Action action;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->stopping = true;
      action = next_action(*s);
    }
    act(s, std::move(action));
  });
  StartRead(&request_);
}

StreamInferReactor::Action StreamInferReactor::next_action(State& s) {
  Action action;
  action.reactor = s.reactor;
  if (s.finished) return action;
  if (s.read_paused && s.next_slot - s.next_write <= s.max_unwritten / 2) {
    s.read_paused = false;
    action.resume_read = true;
  }
  if (s.writing) return action;
  if (s.stopping) {
    s.finished = true;
    action.finish = true;
    action.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is stopping");
    return action;
  }
  auto it = s.ready.find(s.next_write);
  if (it != s.ready.end()) {
    s.in_write = std::move(it->second);
    s.ready.erase(it);
    ++s.next_write;
    s.writing = true;
    action.write = &s.in_write;
  } else if (s.reads_done && s.next_write == s.next_slot) {
    s.finished = true;
    action.finish = true;
  }
  return action;
}

void StreamInferReactor::act(const std::shared_ptr<State>&, Action action) {
  // request_ is idle while reads are paused: no read is outstanding.
  if (action.resume_read) action.reactor->StartRead(&action.reactor->request_);
  if (action.write) {
    action.reactor->StartWrite(action.write);
  } else if (action.finish) {
    action.reactor->Finish(action.status);
  }
}

void StreamInferReactor::complete(const std::shared_ptr<State>& state, uint64_t slot,
                                  inference::ModelStreamInferResponse answer) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->finished) return;  // the client went away: nobody to answer
    state->ready.emplace(slot, std::move(answer));
    action = next_action(*state);
  }
  act(state, std::move(action));
}

void StreamInferReactor::OnReadDone(bool ok) {
  uint64_t slot = 0;
  Action action;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!ok) {
      state_->reads_done = true;  // the client half-closed (or went away)
      action = next_action(*state_);
    } else {
      slot = state_->next_slot++;
    }
  }
  if (!ok) {
    act(state_, std::move(action));
    return;
  }
  auto request = request_from_proto(request_);
  const std::string model_name = request_.model_name();
  const std::string id = request_.id();
  std::shared_ptr<State> state = state_;
  auto answer = [state, slot, model_name, id](Expected<InferResponse> result) {
    inference::ModelStreamInferResponse out;
    if (result.ok()) {
      response_to_proto(*result, out.mutable_infer_response());
    } else {
      out.set_error_message(std::string(status_code_name(result.status().code())) + ": " + result.status().message());
      // Which request failed: the stream carries many.
      out.mutable_infer_response()->set_model_name(model_name);
      out.mutable_infer_response()->set_id(id);
    }
    complete(state, slot, std::move(out));
  };
  // Hand the request over before the next read can start (here, or by next_action() resuming a
  // paused read): the next OnReadDone may run on another thread at once, and a sequence's
  // requests must reach the sequence table in the order the client sent them (a chunk that
  // overtook its predecessor ran on the wrong state, or after its sequence_end). dispatch()
  // only queues, so reading never waits on a run.
  if (request.ok()) {
    service_.dispatch(std::move(*request), std::move(answer));
  } else {
    answer(request.status());
  }
  bool keep_reading;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    keep_reading = !state_->finished;
    if (keep_reading && state_->next_slot - state_->next_write >= state_->max_unwritten) {
      state_->read_paused = true;  // resumed by next_action() once answers drain
      keep_reading = false;
      service_.count_read_pause();
    }
  }
  if (keep_reading) StartRead(&request_);  // request_ is free again: everything was copied out
}

void StreamInferReactor::OnWriteDone(bool ok) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->writing = false;
    if (!ok) {
      if (!state_->finished) {
        state_->finished = true;
        action.finish = true;
        action.status = grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading the stream");
        action.reactor = this;
      }
    } else {
      action = next_action(*state_);
    }
  }
  act(state_, std::move(action));
}

void StreamInferReactor::OnDone() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->reactor = nullptr;
    state_->finished = true;
  }
  if (entered_) {
    service_.remove_pending(state_->pending_id);
    service_.leave();
  }
  delete this;
}

}  // namespace pyflame_rt::net
