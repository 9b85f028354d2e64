// The process-wide CAF actor system: one per process, started on first use, owned here.
//
//   configure_actor_runtime(4);                  // optional, before first use (0 = one per core)
//   caf::actor_system& sys = actor_runtime();    // starts it if needed
//   shutdown_actor_runtime();                    // stops every registered owner, then the system
//
// Objects that own actors (batchers, pipelines) register a stop hook so that a shutdown never
// waits on an actor that nobody will ever stop. The header stays free of CAF includes:
// only the files that spawn actors pay CAF's compile time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "graph/status.h"

namespace caf {
class actor_system;
}

namespace pyflame_rt {

// Worker threads of the actor scheduler (0 = one per core). Fails once the system runs with
// another count: the scheduler cannot be resized while actors live on it.
Status configure_actor_runtime(int threads);

// The running system, started with the configured thread count on first use.
caf::actor_system& actor_runtime();

// Number of scheduler threads of the running system, 0 when it is not running.
int actor_runtime_threads();

// Registers `stop` to be called by shutdown_actor_runtime() before the system is destroyed;
// returns a handle for unregister_actor_owner (called by the owner's destructor).
uint64_t register_actor_owner(std::function<void()> stop);
void unregister_actor_owner(uint64_t handle);

// Stops every registered owner, waits for all actors to finish and destroys the system.
// Idempotent; a later actor_runtime() starts a fresh system.
void shutdown_actor_runtime();
// The same, telling `progress` (on this thread) what it waits for each time that changes
// ("waiting for 2 actor(s) to finish"): a caller bounding the shutdown (the CLI's
// ShutdownWatchdog) can then say what was still running when the bound passed.
void shutdown_actor_runtime(const std::function<void(const std::string&)>& progress);
// The same within `grace`: returns 0 once every actor finished and the system is destroyed,
// or, when actors still run at the bound (a frame inside a kernel that does not check its run),
// their count, leaving that system alive and detached (its threads end with the process; a
// later actor_runtime() starts a new one). Python's exit uses it after stop_all_runs().
size_t shutdown_actor_runtime_within(std::chrono::milliseconds grace);

}  // namespace pyflame_rt
