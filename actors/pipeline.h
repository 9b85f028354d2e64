// Pipeline: multi-model chains (detect -> crop -> embed and liveness in parallel -> join) as
// stage actors connected by bounded channels.
//
//   std::vector<StageSpec> stages = {
//       model_stage("detect", detector),
//       {"crop", {"detect"}, crop_fn},
//       model_stage("embed", embedder, {"crop"}),
//       model_stage("liveness", liveness, {"crop"}),
//       {"join", {"embed", "liveness"}, nullptr}};       // nullptr: merge the branches
//   auto p = Pipeline::create(stages);
//   (*p)->push({{"image", img}}, /*stream=*/cam);
//   Expected<PipelineResult> r = (*p)->pull(std::chrono::milliseconds(100));
//
// Every stage runs on its own thread (a detached CAF actor) and starts a frame as soon as
// it has one, so the stages overlap; model runs inside a stage use its share of the cores. A stage with several upstreams joins their frames by
// sequence number (entries merged, the first upstream wins a name clash). Each stage's input
// channel is bounded with its own policy; drops and stage errors travel on as markers, so
// results come out in push order per stream and every accepted frame is answered or counted
// as dropped. A stage that throws fails that frame only (the error names the stage).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "session/inference_session.h"
#include "streams/bounded_channel.h"

namespace pyflame_rt {

using StageFn = std::function<Expected<Frame>(const Frame&)>;

struct StageSpec {
  std::string name;
  std::vector<std::string> after;  // upstream stages (earlier in the list); empty = fed by push()
  StageFn fn;                      // nullptr = pass the (merged) frame on
  size_t capacity = 64;            // frames waiting at this stage's input
  DropPolicy policy = DropPolicy::kBlock;
  // Cap on the intra-op threads of the stage's model runs; 0 = the cores shared out among
  // the stages (3 stages on 2 cores: 1 each), so overlapping stages do not oversubscribe.
  int intra_op_threads = 0;
};

// The entries of `frame` named `names` (a model's inputs); an error lists what the frame has.
Expected<Frame> select_entries(const Frame& frame, const std::vector<std::string>& names);

// A stage that runs `session` on the frame entries named like its inputs and adds its outputs
// to the frame under their output names.
StageSpec model_stage(std::string name, std::shared_ptr<const InferenceSession> session,
                      std::vector<std::string> after = {});

struct PipelineResult {
  uint64_t stream = 0;
  uint64_t seq = 0;
  Status status;           // the failing stage's error, if one failed
  Frame frame;             // the last stage's output
  std::string dropped_at;  // non-empty when the frame was dropped at that stage's input
  double latency_us = 0;   // push() to the end of the last stage
  bool ok() const { return status.ok() && dropped_at.empty(); }
};

struct StageMetrics {
  std::string name;
  std::string policy;
  uint64_t processed = 0;  // frames the stage ran (successfully or not)
  uint64_t failed = 0;     // frames it failed on
  uint64_t dropped = 0;    // frames dropped at its input
  size_t queue_depth = 0;
  size_t max_queue_depth = 0;
  double p50_us = 0;       // stage run time over the last 1024 frames
  double p99_us = 0;
};

class Pipeline {
 public:
  static Expected<std::unique_ptr<Pipeline>> create(std::vector<StageSpec> stages, size_t output_capacity = 1024);
  ~Pipeline();

  // Sends a frame into the pipeline as the next of `stream`; returns its sequence number.
  // Blocks or drops at the first stages' inputs per their policy; a "block" input still full
  // after `max_block` drops the frame (it comes out of pull() marked dropped) and push()
  // returns kDeadlineExceeded. kUnavailable after close().
  Expected<uint64_t> push(Frame frame, uint64_t stream = 0,
                          std::chrono::milliseconds max_block = std::chrono::milliseconds(60000));
  // The next result, in push order within each stream; kDeadlineExceeded if none arrives in
  // time, kUnavailable once closed and drained.
  Expected<PipelineResult> pull(std::chrono::milliseconds timeout);
  // No more pushes; what was accepted still comes out of pull().
  void close();
  // close() and stop every stage now, discarding what waits (runtime shutdown, destructor).
  // Waits up to `grace` for stages to finish the frame they are computing; a stage stuck in
  // its function is abandoned (it keeps the pipeline's state alive until it returns), so
  // stop() never waits forever. Returns false when a stage was abandoned.
  bool stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  std::vector<StageMetrics> metrics() const;
  const std::vector<std::string>& stage_names() const;

  struct Impl;

 private:
  explicit Pipeline(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with the stages' actors, which may outlive stop()
};

}  // namespace pyflame_rt
