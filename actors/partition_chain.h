// PartitionChain: a model placed on several devices runs as one device actor per partition,
// joined in run order by typed CAF messages: a request's frame (every value a later partition
// or the caller needs) enters the first actor, each runs its partition on the values it reads
// and hands the frame on, the last one answers the caller. Consecutive requests overlap: while
// the wafer partition runs one, the CPU partition can run the next.
//
//   std::vector<ChainStage> stages = {{"p0", wse_exe, {"x"}, {"h"}}, {"p1", cpu_exe, {"h"}, {"y"}}};
//   auto chain = PartitionChain::create(std::move(stages));
//   ASSIGN_OR_RETURN(ValueFrame out, chain->run({{"x", x}}, RunContext{}));   // out["y"]
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "devices/device.h"

namespace pyflame_rt {

using ValueFrame = std::map<std::string, Value>;

struct ChainStage {
  std::string name;                               // "p0 (wse3)": names the stage in errors
  std::shared_ptr<const Executable> executable;
  std::vector<std::string> inputs;   // the executable's inputs, in its order
  std::vector<std::string> outputs;  // the executable's outputs, in its order
  std::vector<std::string> keep;     // values the frame keeps after this stage (read later or returned)
};

class PartitionChain {
 public:
  static std::unique_ptr<PartitionChain> create(std::vector<ChainStage> stages);
  ~PartitionChain();
  // Runs `frame` through every stage; blocks the calling thread (never an actor's) until the
  // last stage answers or one fails (its error names the stage).
  Expected<ValueFrame> run(ValueFrame frame, const RunContext& ctx) const;

  struct Impl;

 private:
  explicit PartitionChain(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs one stage on `frame`: its inputs are taken from the frame, its outputs added, and
// values no later stage needs dropped. Exposed for the chain's actors and its tests.
Status run_chain_stage(const ChainStage& stage, ValueFrame& frame, const RunContext& ctx);

}  // namespace pyflame_rt
