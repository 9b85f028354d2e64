#include "actors/async_run.h"

#include <caf/all.hpp>

#include "actors/actor_runtime.h"
#include "actors/spawn_function_actor.h"

namespace pyflame_rt {

namespace {

// Calls `done` exactly once: with the run's result, or kUnavailable if the actor never ran.
struct AsyncRun {
  std::shared_ptr<const InferenceSession> session;
  std::vector<std::string> output_names;
  std::map<std::string, Tensor> feeds;
  std::shared_ptr<const RunOptions> run_options;
  RunCallback done;
  bool answered = false;

  void run() {
    answered = true;
    done(session->run_values(output_names, feeds, *run_options));
  }
  ~AsyncRun() {
    if (!answered && done) done(make_status(StatusCode::kUnavailable, "the run was not started: the actor runtime shut down"));
  }
};

}  // namespace

void run_async(std::shared_ptr<const InferenceSession> session, std::vector<std::string> output_names,
               std::map<std::string, Tensor> feeds, std::shared_ptr<const RunOptions> run_options, RunCallback done) {
  auto task = std::make_shared<AsyncRun>();
  task->session = std::move(session);
  task->output_names = std::move(output_names);
  task->feeds = std::move(feeds);
  task->run_options = run_options ? std::move(run_options) : std::make_shared<const RunOptions>();
  task->done = std::move(done);
  // A run is one blocking computation: the actor does it when it starts, then quits.
  spawn_function_actor(actor_runtime(), [task](caf::event_based_actor* self) {
    task->run();
    self->quit();
  });
}

}  // namespace pyflame_rt
