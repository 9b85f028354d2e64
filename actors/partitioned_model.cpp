#include "actors/partitioned_model.h"

#include "compiler/partitioner.h"
#include "compiler/pipeline.h"
#include "devices/device_registry.h"
#include "session/inference_session.h"

namespace pyflame_rt {

Expected<std::vector<StageSpec>> partition_stages(Graph graph, int partitions, const SessionOptions& options,
                                                  std::vector<PartitionInfo>* info) {
  RETURN_IF_ERROR(graph.sort_topologically());
  // Folding stays within the session's memory limit and run deadline, as at session creation.
  ASSIGN_OR_RETURN(Graph optimized, optimize_graph(std::move(graph), options.optimization_level,
                                                   options.disabled_passes, fold_limits(options)));
  // The partitions run on CPU sessions that optimise nothing: the CPU's own passes (its
  // layouts) run here, once, on the whole graph, as the session would on one partition.
  ASSIGN_OR_RETURN(std::unique_ptr<Device> cpu, DeviceRegistry::global().create("cpu", DeviceConfig{}));
  ASSIGN_OR_RETURN(optimized, run_passes(std::move(optimized), cpu->pass_names(options.optimization_level),
                                         options.disabled_passes));
  ASSIGN_OR_RETURN(std::vector<Partition> parts, partition_graph(optimized, partitions));
  double total = 0;
  for (const auto& p : parts) total += p.cost;
  SessionOptions per_partition = options;
  per_partition.optimization_level = OptLevel::kNone;  // optimised once, as a whole
  per_partition.optimized_model_path.clear();
  std::vector<StageSpec> stages;
  for (auto& part : parts) {
    PartitionInfo pi;
    pi.name = part.name;
    pi.nodes = part.graph.nodes.size();
    pi.cost_share = total > 0 ? part.cost / total : 0;
    for (const auto& v : part.graph.inputs) pi.inputs.push_back(v.name);
    for (const auto& v : part.graph.outputs) pi.outputs.push_back(v.name);
    auto created = InferenceSession::create_from_graph(std::move(part.graph), per_partition);
    if (!created.ok()) return created.status().with_context("partition " + part.name + ": ");
    std::shared_ptr<const InferenceSession> session = std::move(created).value();
    StageSpec stage;
    stage.name = part.name;
    if (!stages.empty()) stage.after = {stages.back().name};
    std::vector<std::string> inputs = pi.inputs, carry = part.carry;
    stage.fn = [session, inputs, carry](const Frame& frame) -> Expected<Frame> {
      ASSIGN_OR_RETURN(Frame feeds, select_entries(frame, inputs));
      ASSIGN_OR_RETURN(std::vector<Tensor> outs, session->run({}, feeds));
      Frame next;
      for (const auto& name : carry) {
        auto it = frame.find(name);
        if (it != frame.end()) next.emplace(name, it->second);
      }
      for (size_t i = 0; i < outs.size(); ++i) next[session->outputs()[i].name] = std::move(outs[i]);
      return next;
    };
    stages.push_back(std::move(stage));
    if (info) info->push_back(std::move(pi));
  }
  return stages;
}

}  // namespace pyflame_rt
