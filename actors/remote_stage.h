// Scale-out: a pipeline stage or a model served by another process or host, reached through
// CAF's middleman (remote actors over TCP).
//
//   // process A: serve a model (or any StageFn) on a port
//   auto server = StageServer::serve_model("embed", session, {"0.0.0.0", 4242});
//   // process B: use it as a pipeline stage, or behind a batcher as its device
//   ASSIGN_OR_RETURN(StageSpec embed, remote_stage("embed", "10.0.0.5", 4242, {"crop"}));
//   ASSIGN_OR_RETURN(auto remote, RemoteStage::connect("10.0.0.5", 4242));
//   auto batcher = Batcher::create(make_remote_target(remote), opts);
//
// A served stage answers one frame at a time on its own thread. A model stage receives only
// the frame entries it reads and sends back only what it added, changed or removed. A server
// that disappears fails the calls waiting on it with kUnavailable naming the stage and its
// address; the next call connects again, so a restarted server is picked up.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/batch_target.h"
#include "actors/pipeline.h"

namespace pyflame_rt {

struct ServeAddress {
  std::string host = "127.0.0.1";  // the interface to listen on ("0.0.0.0": every interface)
  uint16_t port = 0;               // 0: any free port (see StageServer::port())
};

class StageServer {
 public:
  // Serves `fn` under `name`. Fails when the port cannot be opened.
  static Expected<std::unique_ptr<StageServer>> serve(std::string name, StageFn fn, ServeAddress address = {});
  // Serves a model: clients learn its inputs and outputs and send only the inputs.
  static Expected<std::unique_ptr<StageServer>> serve_model(std::string name,
                                                            std::shared_ptr<const InferenceSession> session,
                                                            ServeAddress address = {});
  ~StageServer();  // stop()
  StageServer(const StageServer&) = delete;
  StageServer& operator=(const StageServer&) = delete;

  const std::string& name() const;
  uint16_t port() const;
  uint64_t frames_served() const;  // frames answered, failed ones included
  uint64_t frames_failed() const;
  // What a shutdown still waits for, for a report ("a frame of stage 'cnn' running for 812 ms;
  // 2 client connection(s) of stage 'cnn' still open"); empty when nothing.
  std::string still_running() const;
  // Refuses the frames still queued (kUnavailable), stops the run of the frame running now
  // (its caller gets kUnavailable "the run was stopped: stage 'x' is shutting down", at the
  // run's next check: RunStopSource, devices/run_interrupt.h) and gives it up to 1 s to end,
  // closes the port and every client connection, and stops the stage's actor; clients
  // waiting get kUnavailable. Idempotent. Returns within about 3 s whatever the clients do; a
  // frame that does not end (a kernel that does not check) keeps the actor busy until it does.
  void stop();
  // The same with `grace` instead of 1 s for the running frame to end (0: none).
  void stop(std::chrono::milliseconds grace);
  // True while a frame is being run (after stop(): one that did not end within the grace).
  bool frame_in_progress() const;

  struct Impl;

 private:
  explicit StageServer(std::shared_ptr<Impl> impl);
  static Expected<std::unique_ptr<StageServer>> start(std::shared_ptr<Impl> impl, const ServeAddress& address);
  std::shared_ptr<Impl> impl_;
};

// A client of a served stage. Thread-safe: calls from several threads share the connection.
class RemoteStage {
 public:
  // Connects and asks the stage for its name, inputs and outputs.
  static Expected<std::shared_ptr<RemoteStage>> connect(
      std::string host, uint16_t port, std::chrono::milliseconds call_timeout = std::chrono::seconds(30));
  ~RemoteStage();

  const std::string& name() const;     // the served stage's name
  const std::string& address() const;  // "host:port"
  const std::vector<std::string>& inputs() const;   // empty unless a model is served
  const std::vector<std::string>& outputs() const;  // empty unless a model is served
  bool dynamic_batch() const;

  // Runs the remote stage on `frame`: the result is `frame` with the stage's changes applied.
  // kDeadlineExceeded after call_timeout; kUnavailable when the server cannot be reached.
  Expected<Frame> call(const Frame& frame) const;

  struct Impl;

 private:
  explicit RemoteStage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A pipeline stage named `name` that runs the stage served at host:port. Connects now, so a
// wrong address fails here rather than on the first frame.
Expected<StageSpec> remote_stage(std::string name, std::string host, uint16_t port, std::vector<std::string> after = {},
                                 std::chrono::milliseconds call_timeout = std::chrono::seconds(30));
// The same for a client already connected.
StageSpec remote_stage(std::string name, std::shared_ptr<const RemoteStage> remote, std::vector<std::string> after = {});

// A served model as a batcher's device: batches are concatenated here and run remotely.
std::shared_ptr<const BatchTarget> make_remote_target(std::shared_ptr<const RemoteStage> remote);

}  // namespace pyflame_rt
