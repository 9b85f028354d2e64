// Device actor: owns one compiled partition (a BatchTarget) on its own thread and answers
// (run_atom, BatchOfRequests) with done_atom after answering every request in the batch.
// It runs detached because model work blocks for milliseconds: it must not hold a scheduler
// worker that message-passing actors need.
#pragma once

#include <memory>

#include "actors/actor_messages.h"
#include "actors/batch_target.h"
#include "actors/batcher_counters.h"

namespace pyflame_rt {

// threads_per_device > 0 caps the intra-op threads of its runs (several device actors
// sharing the cores); 0 leaves the session's own setting.
caf::actor spawn_device_actor(caf::actor_system& system, std::shared_ptr<const BatchTarget> target,
                              std::shared_ptr<BatcherCounters> counters, int threads_per_device = 0);

}  // namespace pyflame_rt
