// What flows between pipeline stages: a frame of named tensors with its stream and sequence
// number. An error from a stage, or a drop by a channel's policy, travels on in place of the
// frame, so every accepted frame comes out of the pipeline either answered or marked dropped.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "graph/status.h"
#include "graph/tensor.h"

namespace pyflame_rt {

using Frame = std::map<std::string, Tensor>;

struct Envelope {
  uint64_t stream = 0;
  uint64_t seq = 0;
  Frame frame;
  Status status;           // not ok: an earlier stage failed on this frame
  std::string dropped_at;  // non-empty: dropped at this stage's input by its policy
  std::chrono::steady_clock::time_point pushed;
  bool dropped() const { return !dropped_at.empty(); }
};

}  // namespace pyflame_rt
