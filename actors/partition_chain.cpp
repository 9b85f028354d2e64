#include "actors/partition_chain.h"

#include <future>
#include <set>

#include <caf/all.hpp>

#include "actors/actor_runtime.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

// One request travelling down the chain.
struct ChainJob {
  ValueFrame frame;
  RunContext ctx;
  std::promise<Expected<ValueFrame>> done;
};
using ChainJobPtr = std::shared_ptr<ChainJob>;

}  // namespace
}  // namespace pyflame_rt

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pyflame_rt::ChainJobPtr)

namespace pyflame_rt {
namespace {

using chain_atom = caf::atom_constant<caf::atom("chain")>;
// The protocol of a partition's device actor: a job in, nothing back (it goes on downstream).
using partition_actor = caf::typed_actor<caf::reacts_to<chain_atom, ChainJobPtr>>;

partition_actor::behavior_type partition_behavior(partition_actor::pointer self, const ChainStage* stage,
                                                  partition_actor next) {
  return {
      [=](chain_atom, const ChainJobPtr& job) {
        Status st;
        try {
          st = run_chain_stage(*stage, job->frame, job->ctx);
        } catch (const std::exception& e) {
          st = make_status(StatusCode::kRuntimeError, "partition ", stage->name, ": ", e.what());
        }
        if (!st.ok()) {
          job->done.set_value(st);
        } else if (next) {
          self->send(next, chain_atom::value, job);
        } else {
          job->done.set_value(std::move(job->frame));
        }
      },
  };
}

}  // namespace

Status run_chain_stage(const ChainStage& stage, ValueFrame& frame, const RunContext& ctx) {
  // The device's executor checks the run's controls between nodes on this thread too.
  RunInterruptScope interrupt(ctx);
  std::vector<Value> inputs;
  inputs.reserve(stage.inputs.size());
  for (const auto& name : stage.inputs) {
    auto it = frame.find(name);
    if (it == frame.end()) return make_status(StatusCode::kFail, "partition ", stage.name, ": value '", name, "' is missing");
    inputs.push_back(it->second);
  }
  Expected<std::vector<Value>> out = stage.executable->run(std::move(inputs), ctx);
  if (!out.ok()) return out.status().with_context("partition " + stage.name + ": ");
  for (size_t i = 0; i < stage.outputs.size() && i < out->size(); ++i) frame[stage.outputs[i]] = std::move((*out)[i]);
  std::set<std::string> keep(stage.keep.begin(), stage.keep.end());
  for (auto it = frame.begin(); it != frame.end();) it = keep.count(it->first) ? std::next(it) : frame.erase(it);
  return Status::OK();
}

struct PartitionChain::Impl {
  std::vector<ChainStage> stages;
  std::vector<partition_actor> actors;  // actors[0] is the entry
  uint64_t owner = 0;

  void stop() {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    actors.clear();
  }
};

PartitionChain::PartitionChain(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PartitionChain::~PartitionChain() {
  unregister_actor_owner(impl_->owner);
  impl_->stop();
}

std::unique_ptr<PartitionChain> PartitionChain::create(std::vector<ChainStage> stages) {
  auto impl = std::make_unique<Impl>();
  impl->stages = std::move(stages);
  caf::actor_system& system = actor_runtime();
  // Spawned last to first so each knows its successor. Detached: a partition's run blocks
  // for its whole duration and must not hold a scheduler worker.
  partition_actor next;
  std::vector<partition_actor> reversed;
  for (size_t i = impl->stages.size(); i-- > 0;) {
    next = system.spawn<caf::detached>(partition_behavior, &impl->stages[i], next);
    reversed.push_back(next);
  }
  impl->actors.assign(reversed.rbegin(), reversed.rend());
  Impl* raw = impl.get();
  impl->owner = register_actor_owner([raw] { raw->stop(); });
  return std::unique_ptr<PartitionChain>(new PartitionChain(std::move(impl)));
}

Expected<ValueFrame> PartitionChain::run(ValueFrame frame, const RunContext& ctx) const {
  if (impl_->actors.empty()) return make_status(StatusCode::kUnavailable, "the model's device actors were stopped");
  auto job = std::make_shared<ChainJob>();
  job->frame = std::move(frame);
  job->ctx = ctx;
  std::future<Expected<ValueFrame>> result = job->done.get_future();
  caf::anon_send(impl_->actors.front(), chain_atom::value, job);
  job.reset();  // the chain holds it now; if an actor dies with it, the promise breaks
  try {
    return result.get();
  } catch (const std::future_error&) {
    return make_status(StatusCode::kUnavailable, "a device actor of the model stopped before answering");
  }
}

}  // namespace pyflame_rt
