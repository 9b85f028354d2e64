// `pyflame-rt serve`: two servers behind one command, both running until SIGINT or SIGTERM.
//   pyflame-rt serve --model NAME=PATH [--model ...] [--repository DIR] [--http-port 8000]
//       [--grpc-port 8001] [--zmq-pull EP] [--zmq-pub EP] ...   the KServe v2 model server (net/)
//   pyflame-rt serve MODEL --stage-port PORT [--name NAME]      a CAF remote pipeline stage
// The model server is chosen by --model or --repository; a positional MODEL alone is a stage.
#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <thread>

#include "actors/actor_runtime.h"
#include "actors/remote_stage.h"
#include "cli_command.h"
#include "devices/run_interrupt.h"
#include "net/server.h"
#include "session/inference_session.h"
#include "shutdown_watchdog.h"

namespace pyflame_rt {
namespace {

struct ServeOptions {
  // The CAF stage server.
  std::string model;
  std::string name;  // default: the model file's stem
  ServeAddress address;
  int stage_port = -1;
  // The model server.
  std::vector<std::string> models;  // NAME=PATH
  std::string preferred_batch_sizes;
  int64_t batch_timeout_us = 0;
  net::ServerOptions server;
  int threads = -1;  // -1: each server's default
  std::string host;  // empty: each server's default (stage: loopback; model server: 0.0.0.0)
  int64_t shutdown_grace_ms = kDefaultShutdownGraceMs;
};

// Blocks the stop signals before any thread starts, so that only sigwait() sees them. SIGPIPE
// is ignored: a closed stdout (`pyflame-rt serve ... | head -1` to learn the port) killed the
// server at its closing line ("stopping after N frames"): killed by the signal, not exit 0; the
// write now fails with EPIPE and the shutdown goes on.
sigset_t block_stop_signals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

// At SIGINT/SIGTERM: every run in flight stops at its next check (between nodes, inside the
// kernels that poll), then `stop` closes the server, then the actor system goes; all of it
// within --shutdown-grace-ms, or the watchdog reports what was still running and ends the
// process with kShutdownTimeoutExit (docs/reliability.md, "Shutdown").
int shutdown_within_grace(const ServeOptions& o, const std::function<void()>& stop,
                          const std::function<std::string()>& still_running) {
  ShutdownWatchdog watchdog(std::chrono::milliseconds(o.shutdown_grace_ms), [&still_running] {
    std::string s = still_running ? still_running() : std::string();
    if (int64_t runs = runs_in_progress(); runs > 0) {
      s += std::string(s.empty() ? "" : "; ") + std::to_string(runs) + " model run(s) in progress";
    }
    return s;
  });
  stop_all_runs("the server is shutting down");
  // The runs in flight end at their next check: their callers are answered why ("the run was
  // stopped: ...", 503 / UNAVAILABLE) before the connections close, if that takes under 1 s.
  watchdog.phase("waiting for the runs in flight to stop");
  const auto drain_until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  const bool were_running = runs_in_progress() > 0;
  while (runs_in_progress() > 0 && std::chrono::steady_clock::now() < drain_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (were_running) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the answers' way out
  watchdog.phase("stopping the server");
  stop();
  watchdog.phase("stopping the actor system");
  shutdown_actor_runtime([&watchdog](const std::string& p) { watchdog.phase(p); });
  watchdog.disarm();
  return 0;
}

int serve_stage(const ServeOptions& o) {
  std::string name = o.name.empty() ? std::filesystem::path(o.model).stem().string() : o.name;
  SessionOptions opts = o.server.model_defaults.session;  // --run-timeout-ms, --memory-limit-mb
  opts.num_threads = o.threads < 0 ? 0 : o.threads;
  sigset_t stop_signals = block_stop_signals();
  auto session = InferenceSession::create(o.model, opts);
  if (!session.ok()) return cli_fail(session.status());
  for (const auto& w : (*session)->warnings()) std::cerr << "warning: " << w << "\n";
  ServeAddress address = o.address;
  if (!o.host.empty()) address.host = o.host;
  if (o.stage_port >= 0) address.port = static_cast<uint16_t>(o.stage_port);
  auto server = StageServer::serve_model(name, std::shared_ptr<const InferenceSession>(std::move(*session)), address);
  if (!server.ok()) return cli_fail(server.status());
  // Scripts wait for this line to learn the port (--stage-port 0 picks a free one).
  std::cout << "serving stage '" << name << "' (" << o.model << ") on " << address.host << ":" << (*server)->port()
            << std::endl;
  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::shared_ptr<StageServer> stage(std::move(*server));  // the report reads it until the end
  return shutdown_within_grace(o, [&stage] {
    // Inside the bound: a stdout nobody reads (a full pipe) must not hold the shutdown either.
    std::cout << "stopping after " << stage->frames_served() << " frames (" << stage->frames_failed() << " failed)"
              << std::endl;
    stage->stop();
  }, [stage] { return stage->still_running(); });
}

Status finish_server_options(ServeOptions& o) {
  net::ServerOptions& s = o.server;
  net::ModelConfig& m = s.model_defaults;
  for (const auto& spec : o.models) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return invalid_argument("--model: expected NAME=PATH, got '", spec, "'");
    }
    s.models.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
  }
  m.batching.batch_timeout_ms = static_cast<double>(o.batch_timeout_us) / 1000.0;
  if (!o.preferred_batch_sizes.empty()) {
    m.batching.preferred_batch_sizes.clear();
    std::stringstream ss(o.preferred_batch_sizes);
    std::string part;
    while (std::getline(ss, part, ',')) {
      int n = 0;
      size_t used = 0;
      try {
        n = std::stoi(part, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (part.empty() || used != part.size() || n < 1 || n > 4096) {
        return invalid_argument("--preferred-batch-sizes: expected numbers in [1, 4096] separated by commas, got '",
                                o.preferred_batch_sizes, "'");
      }
      m.batching.preferred_batch_sizes.push_back(n);
    }
  }
  // Throughput-first default (docs/performance.md, serving): two batches computing at once,
  // each on one core; one OpenMP team of 2 threads per run collapsed under 32 connections.
  m.session.num_threads = o.threads < 0 ? 1 : o.threads;
  if (!o.host.empty()) s.host = o.host;
  if (s.models.empty() && s.repository_dir.empty()) {
    return invalid_argument("nothing to serve: give --model NAME=PATH or --repository DIR");
  }
  return m.validate();
}

int serve_models(ServeOptions& o) {
  // A bad option value is a usage error (exit 2, as CLI11's own checks), not a failure to serve.
  if (Status st = finish_server_options(o); !st.ok()) {
    cli_fail(st);
    return 2;
  }
  sigset_t stop_signals = block_stop_signals();
  auto server = net::Server::start(o.server);
  if (!server.ok()) return cli_fail(server.status());
  for (const auto& w : (*server)->warnings()) std::cerr << "warning: " << w << "\n";
  for (const auto& name : (*server)->repository()->model_names()) std::cout << "model " << name << " ready\n";
  // Scripts wait for these lines to learn the ports (--http-port 0 picks a free one).
  for (const auto& a : (*server)->addresses()) std::cout << "serving " << a << "\n";
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&stop_signals, &signal);
  return shutdown_within_grace(o, [&server] {
    std::cout << "stopping" << std::endl;
    (*server)->stop();
    server->reset();
  }, nullptr);
}

int serve(ServeOptions& o) {
  bool model_server = !o.models.empty() || !o.server.repository_dir.empty();
  if (model_server && !o.model.empty()) {
    return cli_fail(invalid_argument("serve: give either MODEL (a remote stage) or --model/--repository (the model "
                                     "server), not both; got MODEL '", o.model, "'"));
  }
  if (model_server) return serve_models(o);
  if (o.model.empty()) {
    return cli_fail(invalid_argument("serve: nothing to serve: give --model NAME=PATH (the KServe server) or MODEL "
                                     "--stage-port PORT (a remote stage)"));
  }
  return serve_stage(o);
}

}  // namespace

CliCommand add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  net::ModelConfig& m = o->server.model_defaults;
  m.batching.device_actors = 2;
  CLI::App* sub = add_cli_subcommand(app, "serve",
                                     "serve models over KServe v2 (HTTP, gRPC) and ZeroMQ, or one model as a remote "
                                     "pipeline stage (CAF over TCP)");
  sub->add_option("MODEL", o->model, "a model to serve as a remote pipeline stage (with --stage-port)");
  sub->add_option("--model", o->models, "NAME=PATH, once per model (the model server)")->take_all();
  sub->add_option("--repository", o->server.repository_dir, "a Triton-layout model repository folder");
  sub->add_option("--host", o->host, "address to bind (default: 0.0.0.0 for the model server, " +
                                         o->address.host + " for a stage)");
  sub->add_option("--http-port", o->server.http_port, "KServe v2 HTTP port (0 = a free one, -1 = none)")
      ->check(CLI::Range(-1, 65535))->capture_default_str();
  sub->add_option("--http-threads", o->server.http_threads, "HTTP I/O threads")->check(CLI::Range(1, 256));
  sub->add_option("--max-body-bytes", o->server.max_body_bytes, "largest request body accepted (413 beyond)")
      ->check(CLI::Range(static_cast<size_t>(1024), static_cast<size_t>(1) << 40));
  sub->add_option("--grpc-port", o->server.grpc_port, "KServe v2 gRPC port (0 = a free one, -1 = none)")
      ->check(CLI::Range(-1, 65535));
  sub->add_option("--grpc-max-concurrent-rpcs", o->server.grpc_max_concurrent_rpcs,
                  "RPCs in flight before RESOURCE_EXHAUSTED (0 = no limit)")->check(CLI::Range(0, 1 << 20));
  sub->add_option("--zmq-pull", o->server.zmq_pull, "ZeroMQ PULL endpoint to bind (tcp://127.0.0.1:5555)");
  sub->add_option("--zmq-sub", o->server.zmq_sub, "ZeroMQ SUB endpoint to connect to (topic = model name)");
  sub->add_option("--zmq-pub", o->server.zmq_pub, "ZeroMQ PUB endpoint for results and errors");
  sub->add_option("--sequence-idle-ms", o->server.sequence_idle_ms, "free a stateful sequence idle this long")
      ->check(CLI::Range(1, 86400000));
  sub->add_option("--max-sequences", o->server.max_sequences, "stateful sequences open at once (503 beyond)")
      ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(1) << 24));
  sub->add_option("--max-batch-size", m.batching.max_batch_size, "dynamic batching: largest batch")
      ->check(CLI::Range(1, 4096));
  sub->add_option("--batch-timeout-us", o->batch_timeout_us, "dynamic batching: longest wait for a fuller batch")
      ->check(CLI::Range(static_cast<int64_t>(0), static_cast<int64_t>(60000000)));
  sub->add_option("--preferred-batch-sizes", o->preferred_batch_sizes, "dispatch at once at these sizes (4,8)");
  sub->add_option("--max-queue", m.batching.max_queue_size, "requests waiting per model before 503")
      ->check(CLI::Range(1, 1 << 24));
  sub->add_option("--request-timeout-ms", m.batching.request_timeout_ms, "default per-request deadline")
      ->check(CLI::Range(static_cast<int64_t>(1), static_cast<int64_t>(86400000)));
  sub->add_option("--device-actors", m.batching.device_actors, "batches computing at once per model")
      ->check(CLI::Range(1, 64));
  // Untrusted models (docs/reliability.md): a deadline for every run and a memory bound.
  sub->add_option("--run-timeout-ms", m.session.run_timeout_ms, "deadline of every model run (0 = none)")
      ->check(CLI::Range(static_cast<int64_t>(0), static_cast<int64_t>(86400000)));
  sub->add_option("--memory-limit-mb", m.session.memory_limit_mb, "memory one run may hold (0 = no limit)")
      ->check(CLI::Range(static_cast<int64_t>(0), static_cast<int64_t>(1) << 30));
  sub->add_option("--threads", o->threads, "intra-op threads per run (model server default 1, stage default: cores)")
      ->check(CLI::Range(0, 1024));
  // The stage server.
  sub->add_option("--stage-port", o->stage_port, "serve MODEL as a remote stage on this port (0 = a free one)")
      ->check(CLI::Range(0, 65535));
  sub->add_option("--port", o->stage_port, "the older spelling of --stage-port")->check(CLI::Range(0, 65535));
  sub->add_option("--name", o->name, "stage name (default: the model file's name)");
  // Both servers.
  sub->add_option("--shutdown-grace-ms", o->shutdown_grace_ms,
                  "at SIGINT/SIGTERM, the longest the shutdown may take; past it, what was still running is "
                  "reported on stderr and the process exits with status " + std::to_string(kShutdownTimeoutExit))
      ->check(CLI::Range(static_cast<int64_t>(1), kMaxShutdownGraceMs))->capture_default_str();
  return {sub, [o] { return serve(*o); }};
}

}  // namespace pyflame_rt
