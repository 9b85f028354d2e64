// StreamInferReactor: one ModelStreamInfer call (KServe's streaming extension).
//
// Every request read is dispatched at once (a batcher or, with a sequence_id parameter, the
// sequence's stream), so requests of one call overlap; answers are written back in request
// order, one ModelStreamInferResponse each (error_message set instead of infer_response for a
// failed one: the stream stays open). A client that sends without reading is pushed back: with
// max_unwritten_per_stream answers waiting, no further request is read until half are written. The call ends when the client half-closes and every
// answer is written, or at once when a write fails (the client went away); answers arriving
// after that are dropped. The reactor is deleted by gRPC in OnDone(); completion callbacks
// hold only the shared State, never the reactor.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "net/grpc/inference_service.h"

namespace pyflame_rt::net {

class StreamInferReactor final
    : public grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse> {
 public:
  StreamInferReactor(InferenceService& service, grpc::CallbackServerContext* ctx);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  struct State;
  // What to do after the lock is released: gRPC may run reactions inline, so StartWrite and
  // Finish are never called with the lock held.
  struct Action {
    StreamInferReactor* reactor = nullptr;
    bool resume_read = false;
    inference::ModelStreamInferResponse* write = nullptr;
    bool finish = false;
    grpc::Status status;
  };
  static Action next_action(State& s);
  static void complete(const std::shared_ptr<State>& state, uint64_t slot, inference::ModelStreamInferResponse answer);
  static void act(const std::shared_ptr<State>& state, Action action);

  InferenceService& service_;
  bool entered_ = false;
  inference::ModelInferRequest request_;
  std::shared_ptr<State> state_;
};

}  // namespace pyflame_rt::net
