#include "actors/actor_runtime.h"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "actors/remote_wire.h"

namespace pyflame_rt {
namespace {

struct RuntimeState {
  std::mutex mu;
  int configured_threads = 0;
  int running_threads = 0;
  std::unique_ptr<caf::actor_system_config> config;  // must outlive the system
  std::unique_ptr<caf::actor_system> system;
  uint64_t next_owner = 1;
  std::map<uint64_t, std::function<void()>> owners;
};

RuntimeState& state() {
  // Leaked on purpose: Python may call shutdown from atexit after static destructors began.
  static RuntimeState* s = new RuntimeState;
  return *s;
}

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 2;
}

}  // namespace

Status configure_actor_runtime(int threads) {
  if (threads < 0) {
    return invalid_argument("actor runtime threads: expected >= 0 (0 = one per core), got ", threads);
  }
  RuntimeState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.system && s.running_threads != resolve_threads(threads)) {
    return make_status(StatusCode::kFail, "actor runtime threads: the system already runs with ",
                       s.running_threads, " threads, cannot switch to ", resolve_threads(threads),
                       "; call shutdown first");
  }
  s.configured_threads = threads;
  return Status::OK();
}

caf::actor_system& actor_runtime() {
  RuntimeState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.system) {
    s.running_threads = resolve_threads(s.configured_threads);
    s.config = std::make_unique<caf::actor_system_config>();
    s.config->set("scheduler.max-threads", static_cast<size_t>(s.running_threads));
    // Work sharing wakes an idle worker faster than work stealing's sleep/poll cycle, which
    // is what a request entering from an outside thread pays (see docs/architecture.md).
    s.config->set("scheduler.policy", caf::atom("sharing"));
    // The middleman serves and reaches remote stages (actors/remote_stage.h); it needs every
    // type that crosses a process boundary registered before the system starts.
    s.config->load<caf::io::middleman>();
    register_wire_types(*s.config);
    s.system = std::make_unique<caf::actor_system>(*s.config);
  }
  return *s.system;
}

int actor_runtime_threads() {
  RuntimeState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.system ? s.running_threads : 0;
}

uint64_t register_actor_owner(std::function<void()> stop) {
  RuntimeState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  uint64_t id = s.next_owner++;
  s.owners[id] = std::move(stop);
  return id;
}

void unregister_actor_owner(uint64_t handle) {
  RuntimeState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.owners.erase(handle);
}

void shutdown_actor_runtime() { shutdown_actor_runtime(nullptr); }

namespace {

// Takes the system out of the runtime (a later actor_runtime() starts a fresh one) and calls
// every owner's stop hook (they only send exits and abort channels: none of them waits).
struct Detached {
  std::unique_ptr<caf::actor_system> system;
  std::unique_ptr<caf::actor_system_config> config;
};

Detached detach_and_stop_owners(const std::function<void(const std::string&)>& progress) {
  RuntimeState& s = state();
  std::map<uint64_t, std::function<void()>> owners;
  Detached d;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    owners.swap(s.owners);
    d.system.swap(s.system);
    d.config.swap(s.config);
    s.running_threads = 0;
  }
  // Outside the lock: stop hooks may touch the runtime (e.g. unregister themselves).
  size_t stopped = 0;
  for (auto& [id, stop] : owners) {
    if (progress) progress("stopping the actors' owners (" + std::to_string(stopped) + " of " +
                           std::to_string(owners.size()) + " stopped)");
    stop();
    ++stopped;
  }
  return d;
}

}  // namespace

void shutdown_actor_runtime(const std::function<void(const std::string&)>& progress) {
  Detached d = detach_and_stop_owners(progress);
  if (d.system && progress) {
    // await_all_actors_done() without its silence: the caller learns what the wait is on.
    size_t last = 0;
    while (size_t running = d.system->registry().running()) {
      if (running != last) progress("waiting for " + std::to_string(running) + " actor(s) to finish");
      last = running;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    progress("destroying the actor system (joining its scheduler and network threads)");
  } else if (d.system) {
    d.system->await_all_actors_done();
  }
  d.system.reset();  // joins the scheduler threads
}

size_t shutdown_actor_runtime_within(std::chrono::milliseconds grace) {
  Detached d = detach_and_stop_owners(nullptr);
  if (!d.system) return 0;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  size_t running = d.system->registry().running();
  while (running > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    running = d.system->registry().running();
  }
  if (running > 0) {
    // An actor inside a kernel that never checks its run (one oneDNN primitive) cannot be
    // stopped, and destroying the system would join it. The system and its configuration are
    // left alive on purpose (their threads end with the process): the caller is exiting, or
    // accepts the leak for a bounded stop. Not destroying them keeps every object the actor
    // still uses valid.
    (void)d.system.release();
    (void)d.config.release();
    return running;
  }
  d.system.reset();  // joins the scheduler threads
  return 0;
}
}  // namespace pyflame_rt
