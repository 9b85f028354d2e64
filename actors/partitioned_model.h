// A model split into partitions (compiler/partitioner.h), each compiled into its own session
// and run by its own stage actor, the partitions chained by bounded channels: one frame's
// partitions run one after another while consecutive frames overlap (pipeline parallelism
// across device actors). The frames between partitions carry exactly the values a later
// partition or the caller needs; the last one holds the model's outputs.
//
//   std::vector<PartitionInfo> info;
//   ASSIGN_OR_RETURN(std::vector<StageSpec> stages, partition_stages(graph, 2, opts, &info));
//   ASSIGN_OR_RETURN(auto pipeline, Pipeline::create(std::move(stages)));
//   pipeline->push({{"image", x}});               // pull(): {"probs": ...}
#pragma once

#include <string>
#include <vector>

#include "actors/pipeline.h"
#include "session/session_options.h"

namespace pyflame_rt {

struct PartitionInfo {
  std::string name;  // also its stage's name
  size_t nodes = 0;
  double cost_share = 0;  // of the whole model's estimated multiply-adds
  std::vector<std::string> inputs, outputs;
};

struct PartitionedModel {
  std::vector<StageSpec> stages;
  std::vector<PartitionInfo> partitions;
};

// Optimises `graph` with `options`, splits it into at most `partitions` parts and compiles
// each (no further passes). Stage i runs after stage i-1. (compiler_actor.h runs this off the
// caller's thread: partition_model_async.)
Expected<std::vector<StageSpec>> partition_stages(Graph graph, int partitions, const SessionOptions& options,
                                                  std::vector<PartitionInfo>* info = nullptr);

}  // namespace pyflame_rt
