// Static memory planning: from the value shapes known at compile time, each intermediate's
// lifetime (producing step to last reading step) and a first-fit placement of all of them in
// one arena, reusing space whose owner is dead. The arena size is the activations' peak.
//
//   ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(graph));
//   plan.needed_bytes()   // weights + arena: a lower bound of what a run needs
//
// Shapes come from the model (a ConstantOfShape of [2^62, 2^31] infers that shape): every
// size and sum saturates at int64's max rather than overflow, so such a model is simply too
// large for any memory_limit_mb.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "graph/graph.h"

namespace pyflame_rt {

struct MemoryPlan {
  int64_t weight_bytes = 0;  // initializers
  int64_t arena_bytes = 0;   // peak of the intermediates with static shapes, with reuse
  int64_t no_reuse_bytes = 0;  // the same intermediates without reuse (for reports)
  int unknown_values = 0;    // intermediates whose size is only known at run time
  std::map<std::string, int64_t> offsets;  // arena offset per planned value
  int64_t needed_bytes() const;  // weight_bytes + arena_bytes, saturating
};

// `graph` must be topologically sorted.
MemoryPlan plan_memory(const Graph& graph);

}  // namespace pyflame_rt
