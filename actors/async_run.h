// InferenceSession runs started without waiting (ONNX Runtime's run_async): the run happens on
// an actor of the process's actor system and `done` is called there with the outputs or the
// error. The caller's thread is free at once. The actor is a scheduled one, not detached: at
// most one run per scheduler thread computes at a time (the rest wait in the scheduler's
// queue) instead of a thread per call oversubscribing the cores; a batcher sharing the
// scheduler may wait behind them.
//
//   run_async(session, {}, std::move(feeds), std::make_shared<RunOptions>(),
//             [](Expected<std::vector<Value>> outputs) { ... });
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "session/inference_session.h"

namespace pyflame_rt {

using RunCallback = std::function<void(Expected<std::vector<Value>> outputs)>;

// The session, the feeds and the options are kept alive until `done` returned. Setting
// run_options->terminate cancels the run like a synchronous one. When the actor system is
// shut down before the run starts, `done` gets kUnavailable.
void run_async(std::shared_ptr<const InferenceSession> session, std::vector<std::string> output_names,
               std::map<std::string, Tensor> feeds, std::shared_ptr<const RunOptions> run_options, RunCallback done);

}  // namespace pyflame_rt
