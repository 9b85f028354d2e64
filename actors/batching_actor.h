// Batching actor: coalesces requests (see batcher.h for the policy) and supervises the device
// actor that runs them: if that actor dies, its batch is failed with kUnavailable and a new
// one is spawned. Messages: (enqueue_atom, BatchRequestPtr).
#pragma once

#include <memory>

#include "actors/actor_messages.h"
#include "actors/batch_target.h"
#include "actors/batcher.h"
#include "actors/batcher_counters.h"

namespace pyflame_rt {

caf::actor spawn_batching_actor(caf::actor_system& system, std::shared_ptr<const BatchTarget> target,
                                BatchOptions options, std::shared_ptr<BatcherCounters> counters);

}  // namespace pyflame_rt
