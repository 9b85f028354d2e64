// A Pipeline (detect -> embed -> liveness ...) served as a model: the repository batches and
// schedules it like any model, each request becomes one frame.
//
//   auto pipeline = std::shared_ptr<Pipeline>(Pipeline::create(stages).value());
//   auto target = make_pipeline_target("faces", pipeline, inputs, outputs);
//   repository.load("faces", target, inputs, outputs);     // then POST /v2/models/faces/infer
//
// Each run pushes the feeds as a frame on a stream of its own and waits (at most `timeout`)
// for that frame to come out; the answer holds the final frame's entries named in `outputs`.
// Runs may overlap (BatchOptions.device_actors > 1 keeps several frames in the pipeline).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "actors/batch_target.h"
#include "session/inference_session.h"
#include "actors/pipeline.h"

namespace pyflame_rt::net {

std::shared_ptr<const BatchTarget> make_pipeline_target(std::string name, std::shared_ptr<Pipeline> pipeline,
                                                        std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs,
                                                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace pyflame_rt::net
