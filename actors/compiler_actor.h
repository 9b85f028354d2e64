// The compiler actor: import, optimisation passes, partitioning, device compile and compile
// cache writes of new sessions run on its own thread, so creating a model never blocks a
// caller that is running inference.
//
//   std::future<SessionResult> f = create_session_async("model.onnx", options);
//   ... keep serving ...
//   SessionResult s = f.get();
//
// Jobs run one at a time, in request order (a compile already uses every core); a job
// dropped by a runtime shutdown answers kUnavailable.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "session/inference_session.h"
#include "actors/partitioned_model.h"

namespace pyflame_rt {

using SessionResult = Expected<std::shared_ptr<InferenceSession>>;

// `model` is a path, or the model's bytes when `from_bytes`.
std::future<SessionResult> create_session_async(std::string model, bool from_bytes, SessionOptions options = {},
                                                std::vector<std::string> providers = {});

// partition_stages() of the model at `model` (a path, or its bytes when `from_bytes`).
std::future<Expected<PartitionedModel>> partition_model_async(std::string model, bool from_bytes, int partitions,
                                                              SessionOptions options = {});

}  // namespace pyflame_rt
