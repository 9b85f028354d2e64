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

void shutdown_actor_runtime(const std::function<void(const std::string&)>& progress) {
  RuntimeState& s = state();
  std::map<uint64_t, std::function<void()>> owners;
  std::unique_ptr<caf::actor_system> system;
  std::unique_ptr<caf::actor_system_config> config;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    owners.swap(s.owners);
    system.swap(s.system);
    config.swap(s.config);
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
  if (system && progress) {
    // await_all_actors_done() without its silence: the caller learns what the wait is on.
    size_t last = 0;
    while (size_t running = system->registry().running()) {
      if (running != last) progress("waiting for " + std::to_string(running) + " actor(s) to finish");
      last = running;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    progress("destroying the actor system (joining its scheduler and network threads)");
  } else if (system) {
    system->await_all_actors_done();
  }
  system.reset();  // joins the scheduler threads
}

}  // namespace pyflame_rt
