// `pyflame-rt serve MODEL`: serves a model as a remote stage until SIGINT or SIGTERM.
#include <csignal>
#include <filesystem>
#include <memory>

#include "actors/actor_runtime.h"
#include "session/inference_session.h"
#include "actors/remote_stage.h"
#include "cli_command.h"

namespace pyflame_rt {
namespace {

struct ServeOptions {
  std::string model;
  std::string name;  // default: the model file's stem
  ServeAddress address;
  int threads = 0;
};

int serve(const ServeOptions& o) {
  std::string name = o.name.empty() ? std::filesystem::path(o.model).stem().string() : o.name;
  SessionOptions opts;
  opts.num_threads = o.threads;
  // Block the stop signals before any thread starts, so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto session = InferenceSession::create(o.model, opts);
  if (!session.ok()) return cli_fail(session.status());
  for (const auto& w : (*session)->warnings()) std::cerr << "warning: " << w << "\n";
  ServeAddress address = o.address;
  auto server = StageServer::serve_model(name, std::shared_ptr<const InferenceSession>(std::move(*session)), address);
  if (!server.ok()) return cli_fail(server.status());
  // Scripts wait for this line to learn the port (--port 0 picks a free one).
  std::cout << "serving stage '" << name << "' (" << o.model << ") on " << address.host << ":" << (*server)->port()
            << std::endl;
  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::cout << "stopping after " << (*server)->frames_served() << " frames (" << (*server)->frames_failed()
            << " failed)" << std::endl;
  (*server)->stop();
  shutdown_actor_runtime();
  return 0;
}

}  // namespace

CliCommand add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub = add_cli_subcommand(app, "serve", "serve a model as a remote pipeline stage (CAF over TCP)");
  sub->add_option("model", o->model, "ONNX or .pfm model")->required();
  sub->add_option("--name", o->name, "stage name (default: the model file's name)");
  sub->add_option("--host", o->address.host, "address to bind")->capture_default_str();
  sub->add_option("--port", o->address.port, "TCP port, 0 = a free one")->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "intra-op threads, 0 = one per core")->check(CLI::Range(0, 1024));
  return {sub, [o] { return serve(*o); }};
}

}  // namespace pyflame_rt
