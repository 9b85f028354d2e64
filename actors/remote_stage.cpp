#include "actors/remote_stage.h"

#include <caf/io/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "actors/actor_messages.h"
#include "actors/actor_runtime.h"
#include "actors/basp_guard.h"
#include "actors/remote_wire.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {
namespace {

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.raw_data() == b.raw_data() && a.dtype() == b.dtype() && a.dims() == b.dims();
}

// What `out` adds, changes or removes relative to `in`: the part of a stage's answer that
// has to travel back.
WireReply delta_reply(const Frame& in, const Frame& out) {
  WireReply reply;
  for (const auto& [name, t] : out) {
    auto it = in.find(name);
    if (it == in.end() || !same_tensor(it->second, t)) reply.changed.tensors.push_back(to_wire(name, t));
  }
  for (const auto& [name, t] : in) {
    if (!out.count(name)) reply.removed.push_back(name);
  }
  return reply;
}

WireReply error_reply(const Status& s) {
  WireReply reply;
  reply.code = static_cast<int32_t>(s.code());
  reply.message = s.message();
  return reply;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

struct StageServer::Impl {
  StageFn fn;
  WireStageInfo info;
  uint16_t port = 0;      // the guard's: what clients connect to
  uint16_t caf_port = 0;  // where the actor is published, on loopback only
  std::unique_ptr<BaspGuard> guard;
  std::atomic<uint64_t> served{0};
  std::atomic<uint64_t> failed{0};
  // stop(): how long a running frame may take to end before the connections close, and the
  // time its answer gets to reach the client through CAF and the guard.
  static constexpr std::chrono::milliseconds kDrain{1000};
  static constexpr std::chrono::milliseconds kReplyTravel{50};
  std::atomic<bool> stopping{false};     // set by stop(): frames still queued are refused
  // The frames' runs: stop() ends them at their next check (kUnavailable "the run was stopped:
  // stage 'x' is shutting down") without stopping the process's other runs.
  std::shared_ptr<RunStopSource> runs;
  std::atomic<int> in_progress{0};       // frames being run now
  std::atomic<int64_t> run_started_ns{0};  // steady clock of the latest frame's start
  std::mutex mu;
  caf::actor actor;  // null once stopped
  uint64_t owner = 0;

  WireReply run(const WireFrame& wire) {
    served++;
    if (stopping) {  // queued behind the frame that was running when stop() came
      failed++;
      return error_reply(make_status(StatusCode::kUnavailable, "stage '", info.name, "' is shutting down"));
    }
    in_progress++;
    run_started_ns = std::chrono::steady_clock::now().time_since_epoch().count();
    struct Done {
      std::atomic<int>& n;
      ~Done() { n--; }
    } done{in_progress};
    Expected<Frame> in = Status();
    try {  // what a peer sent: nothing it holds may take the server down
      in = from_wire(wire);
    } catch (const std::bad_alloc&) {
      in = make_status(StatusCode::kResourceExhausted, "stage '", info.name, "': the frame is too large to allocate");
    }
    Expected<Frame> out = in.status();
    if (in.ok()) {
      try {
        RunStopScope stoppable(runs);
        out = fn(*in);
      } catch (const std::exception& e) {
        out = runtime_error("stage '", info.name, "' threw: ", e.what());
      }
    }
    if (!out.ok()) {
      failed++;
      return error_reply(out.status());
    }
    return delta_reply(*in, *out);
  }

  std::string still_running() const {
    std::string s;
    if (in_progress > 0) {
      const auto started = std::chrono::steady_clock::time_point(
          std::chrono::steady_clock::duration(run_started_ns.load()));
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      s += "a frame of stage '" + info.name + "' running for " + std::to_string(ms.count()) + " ms";
    }
    const int open = guard ? guard->open_connections() : 0;
    if (open > 0) {
      s += std::string(s.empty() ? "" : "; ") + std::to_string(open) + " client connection(s) of stage '" + info.name +
           "' still open";
    }
    return s;
  }

  void stop(std::chrono::milliseconds drain = kDrain) {
    stopping = true;
    if (runs) runs->stop();
    caf::actor a;
    {
      std::lock_guard<std::mutex> lock(mu);
      std::swap(a, actor);
    }
    unregister_actor_owner(owner);
    if (!a) return;
    // A frame running now gets a moment to end (stopped runs end at their next check) so that
    // its caller hears why ("the run was stopped: ..."), not only that the connection went.
    const auto drain_until = std::chrono::steady_clock::now() + drain;
    const bool was_running = in_progress > 0;
    while (in_progress > 0 && std::chrono::steady_clock::now() < drain_until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (was_running && in_progress == 0) std::this_thread::sleep_for(kReplyTravel);
    if (guard) guard->stop();  // bounded (basp_guard.h): closes every client connection
    // The actor's own system: during a runtime shutdown actor_runtime() would start a new one.
    // middleman().unpublish() waits for the middleman without a limit; this asks it with one.
    caf::actor_system& sys = a.home_system();
    {
      caf::scoped_actor self{sys, /*hide=*/true};
      self->request(sys.middleman().actor_handle(), std::chrono::seconds(2), caf::unpublish_atom::value, a.address(),
                    caf_port)
          .receive([] {}, [](caf::error&) {});
    }
    // A frame running now ends at its next interrupt check (its runs are stopped above);
    // a frame in a kernel that does not check ends when it ends.
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

namespace {

caf::behavior served_stage(caf::event_based_actor*, std::shared_ptr<StageServer::Impl> stage) {
  return {
      [stage](remote_info_atom) { return stage->info; },
      [stage](remote_run_atom, const WireFrame& frame) { return stage->run(frame); },
  };
}

}  // namespace

Expected<std::unique_ptr<StageServer>> StageServer::start(std::shared_ptr<Impl> impl, const ServeAddress& address) {
  caf::actor_system& sys = actor_runtime();
  // Detached: a stage computes for milliseconds and must not hold a scheduler thread.
  caf::actor actor = sys.spawn<caf::detached>(served_stage, impl);
  // Clients reach the actor only through the guard (basp_guard.h), which checks every BASP
  // header before CAF sizes a buffer from it.
  auto port = sys.middleman().publish(actor, 0, "127.0.0.1", /*reuse_addr=*/true);
  if (!port) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return make_status(StatusCode::kUnavailable, "stage '", impl->info.name, "': cannot listen on 127.0.0.1: ",
                       sys.render(port.error()));
  }
  impl->caf_port = *port;
  auto guard = BaspGuard::start(address.host, address.port, *port);
  if (!guard.ok()) {
    sys.middleman().unpublish(actor, *port);
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return guard.status().with_context("stage '" + impl->info.name + "': ");
  }
  impl->guard = std::move(guard).value();
  impl->port = impl->guard->port();
  impl->actor = actor;
  std::weak_ptr<StageServer::Impl> weak = impl;
  impl->owner = register_actor_owner([weak] {
    if (auto stage = weak.lock()) stage->stop();
  });
  return std::unique_ptr<StageServer>(new StageServer(std::move(impl)));
}

Expected<std::unique_ptr<StageServer>> StageServer::serve(std::string name, StageFn fn, ServeAddress address) {
  if (!fn) return invalid_argument("stage '", name, "': a served stage needs a function");
  auto impl = std::make_shared<Impl>();
  impl->info.name = std::move(name);
  impl->fn = std::move(fn);
  impl->runs = std::make_shared<RunStopSource>("stage '" + impl->info.name + "' is shutting down");
  return start(std::move(impl), address);
}

Expected<std::unique_ptr<StageServer>> StageServer::serve_model(std::string name,
                                                                std::shared_ptr<const InferenceSession> session,
                                                                ServeAddress address) {
  if (!session) return invalid_argument("stage '", name, "': a served model needs a session");
  auto impl = std::make_shared<Impl>();
  impl->info.name = name;
  impl->runs = std::make_shared<RunStopSource>("stage '" + name + "' is shutting down");
  for (const auto& in : session->inputs()) impl->info.inputs.push_back(in.name);
  for (const auto& out : session->outputs()) impl->info.outputs.push_back(out.name);
  impl->info.dynamic_batch = make_session_target(session, name)->dynamic_batch();
  impl->fn = model_stage(std::move(name), std::move(session)).fn;
  return start(std::move(impl), address);
}

StageServer::StageServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
StageServer::~StageServer() { stop(); }
const std::string& StageServer::name() const { return impl_->info.name; }
uint16_t StageServer::port() const { return impl_->port; }
uint64_t StageServer::frames_served() const { return impl_->served; }
uint64_t StageServer::frames_failed() const { return impl_->failed; }
std::string StageServer::still_running() const { return impl_->still_running(); }
void StageServer::stop() { impl_->stop(); }
void StageServer::stop(std::chrono::milliseconds grace) { impl_->stop(std::max(grace, std::chrono::milliseconds(0))); }
bool StageServer::frame_in_progress() const { return impl_->in_progress > 0; }

// ---------------------------------------------------------------------------------------------
// Client

struct RemoteStage::Impl {
  std::string host;
  uint16_t port = 0;
  std::string address;
  std::chrono::milliseconds timeout{0};
  mutable WireStageInfo info;  // written by the first connection(), in connect(), before anyone shares it
  uint64_t owner = 0;
  mutable std::mutex mu;
  mutable caf::actor remote;  // null until connected, after a lost connection or a runtime shutdown

  std::string who() const { return "remote stage '" + info.name + "' at " + address; }

  // The connection, made again if it was lost; asks the stage who it is on every (re)connect.
  Expected<caf::actor> connection() const {
    std::lock_guard<std::mutex> lock(mu);
    if (remote) return remote;
    caf::actor_system& sys = actor_runtime();
    caf::scoped_actor self{sys};
    // middleman().remote_actor() waits without a limit for the BASP handshake: a peer that
    // accepts TCP and then stays silent would hang this call forever. Asking the middleman
    // actor ourselves bounds the wait by the call timeout.
    caf::actor actor;
    Status connected;
    self->request(sys.middleman().actor_handle(), timeout, caf::connect_atom::value, host, port)
        .receive(
            [&](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>&) {
              actor = caf::actor_cast<caf::actor>(std::move(ptr));
              if (!actor) connected = make_status(StatusCode::kUnavailable, "no stage is published there");
            },
            [&](caf::error& e) {
              connected = e == caf::sec::request_timeout
                              ? make_status(StatusCode::kDeadlineExceeded, "no handshake within ", timeout.count(), " ms")
                              : make_status(StatusCode::kUnavailable, sys.render(e));
            });
    if (!connected.ok()) {
      return Status(connected.code(), (info.name.empty() ? std::string("remote stage") : who()) + ": cannot connect to " +
                                          address + ": " + connected.message());
    }
    Expected<WireStageInfo> answer = Status();
    self->request(actor, timeout, remote_info_atom::value)
        .receive([&](WireStageInfo& i) { answer = std::move(i); },
                 [&](caf::error& e) {
                   answer = make_status(StatusCode::kUnavailable, "the server at ", address,
                                        " did not say which stage it serves: ", sys.render(e));
                 });
    RETURN_IF_ERROR(answer.status());
    if (!info.name.empty() && answer->name != info.name) {
      return make_status(StatusCode::kUnavailable, who(), ": the server now serves stage '", answer->name, "'");
    }
    if (info.name.empty()) info = std::move(*answer);  // only the first time: readers hold no lock
    remote = actor;
    return remote;
  }

  void forget(const caf::actor& lost) const {
    std::lock_guard<std::mutex> lock(mu);
    if (remote == lost) remote = caf::actor();
  }
};

RemoteStage::RemoteStage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RemoteStage::~RemoteStage() { unregister_actor_owner(impl_->owner); }

Expected<std::shared_ptr<RemoteStage>> RemoteStage::connect(std::string host, uint16_t port,
                                                            std::chrono::milliseconds call_timeout) {
  if (call_timeout.count() <= 0) {
    return invalid_argument("remote stage at ", host, ":", port, ": call timeout must be > 0 ms, got ",
                            call_timeout.count());
  }
  auto impl = std::make_unique<Impl>();
  impl->host = std::move(host);
  impl->port = port;
  impl->address = impl->host + ":" + std::to_string(port);
  impl->timeout = call_timeout;
  RETURN_IF_ERROR(impl->connection().status());
  const Impl* raw = impl.get();
  // A runtime shutdown destroys the system behind the handle: drop it, reconnect on next use.
  impl->owner = register_actor_owner([raw] {
    std::lock_guard<std::mutex> lock(raw->mu);
    raw->remote = caf::actor();
  });
  return std::shared_ptr<RemoteStage>(new RemoteStage(std::move(impl)));
}

const std::string& RemoteStage::name() const { return impl_->info.name; }
const std::string& RemoteStage::address() const { return impl_->address; }
const std::vector<std::string>& RemoteStage::inputs() const { return impl_->info.inputs; }
const std::vector<std::string>& RemoteStage::outputs() const { return impl_->info.outputs; }
bool RemoteStage::dynamic_batch() const { return impl_->info.dynamic_batch; }

namespace {

// One call in flight. A request to a server that dies is never answered by CAF, so the
// caller's actor monitors the server and turns its down message into the call's error.
caf::behavior remote_call(caf::event_based_actor* self, caf::actor remote, WireFrame wire,
                          std::chrono::milliseconds timeout, std::shared_ptr<std::promise<Expected<WireReply>>> done) {
  self->monitor(remote);
  self->set_down_handler([self, done](caf::down_msg& down) {
    done->set_value(make_status(StatusCode::kUnavailable, "is unreachable: ", self->system().render(down.reason)));
    self->quit();
  });
  self->request(remote, timeout, remote_run_atom::value, std::move(wire))
      .then(
          [self, done, remote](WireReply& reply) {
            done->set_value(std::move(reply));
            self->demonitor(remote);
            self->quit();
          },
          [self, done, timeout, remote](caf::error& e) {
            self->demonitor(remote);
            if (e == caf::sec::request_timeout) {
              done->set_value(make_status(StatusCode::kDeadlineExceeded, "did not answer within ", timeout.count(), " ms"));
            } else {
              done->set_value(make_status(StatusCode::kUnavailable, "is unreachable: ", self->system().render(e)));
            }
            self->quit();
          });
  return {[](done_atom) {}};  // the answer or the down message ends the actor
}

}  // namespace

Expected<Frame> RemoteStage::call(const Frame& frame) const {
  // A model reads only its inputs: the rest of the frame stays here.
  WireFrame wire;
  if (impl_->info.inputs.empty()) {
    wire = to_wire(frame);
  } else {
    ASSIGN_OR_RETURN(Frame feeds, select_entries(frame, impl_->info.inputs));
    wire = to_wire(feeds);
  }
  ASSIGN_OR_RETURN(caf::actor remote, impl_->connection());
  auto done = std::make_shared<std::promise<Expected<WireReply>>>();
  std::future<Expected<WireReply>> answer = done->get_future();
  remote.home_system().spawn(remote_call, remote, std::move(wire), impl_->timeout, done);
  Expected<WireReply> reply = Status();
  try {
    reply = answer.get();
  } catch (const std::future_error&) {  // the call's actor was stopped by a runtime shutdown
    reply = make_status(StatusCode::kUnavailable, "was not answered: the actor runtime shut down");
  }
  if (!reply.ok()) {
    // A lost or stuck server: the next call connects again.
    impl_->forget(remote);
    return Status(reply.status().code(), impl_->who() + " " + reply.status().message());
  }
  if (reply->code != 0) return Status(static_cast<StatusCode>(reply->code), reply->message);
  Expected<Frame> changed = from_wire(reply->changed);
  if (!changed.ok()) {
    return make_status(StatusCode::kRuntimeError, impl_->who(), " answered a bad frame: ", changed.status().message());
  }
  Frame out = frame;
  for (const std::string& name : reply->removed) out.erase(name);
  for (auto& [name, t] : *changed) out[name] = std::move(t);
  return out;
}

Expected<StageSpec> remote_stage(std::string name, std::string host, uint16_t port, std::vector<std::string> after,
                                 std::chrono::milliseconds call_timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<RemoteStage> remote, RemoteStage::connect(std::move(host), port, call_timeout));
  return remote_stage(std::move(name), std::move(remote), std::move(after));
}

StageSpec remote_stage(std::string name, std::shared_ptr<const RemoteStage> remote, std::vector<std::string> after) {
  StageSpec spec;
  spec.name = std::move(name);
  spec.after = std::move(after);
  spec.fn = [remote](const Frame& frame) { return remote->call(frame); };
  return spec;
}

// ---------------------------------------------------------------------------------------------
// A served model as a batch target

namespace {

class RemoteTarget : public BatchTarget {
 public:
  explicit RemoteTarget(std::shared_ptr<const RemoteStage> remote)
      : remote_(std::move(remote)), name_(remote_->name() + "@" + remote_->address()) {}
  const std::string& name() const override { return name_; }
  bool dynamic_batch() const override { return remote_->dynamic_batch(); }
  const std::vector<std::string>& output_names() const override { return remote_->outputs(); }
  Status validate(const std::map<std::string, Tensor>& feeds) const override {
    // Names here; dtypes and shapes are checked where the model is.
    return select_entries(feeds, remote_->inputs()).status();
  }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const override {
    ASSIGN_OR_RETURN(Frame out, remote_->call(feeds));
    std::vector<Tensor> outputs;
    for (const std::string& name : remote_->outputs()) {
      auto it = out.find(name);
      if (it == out.end()) {
        return make_status(StatusCode::kRuntimeError, "remote model '", name_, "' answered without output '", name, "'");
      }
      outputs.push_back(it->second);
    }
    return outputs;
  }

 private:
  std::shared_ptr<const RemoteStage> remote_;
  std::string name_;
};

}  // namespace

std::shared_ptr<const BatchTarget> make_remote_target(std::shared_ptr<const RemoteStage> remote) {
  return std::make_shared<RemoteTarget>(std::move(remote));
}

}  // namespace pyflame_rt
