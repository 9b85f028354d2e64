#include "model_server_command.h"

#include <csignal>
#include <iostream>
#include <sstream>

#include "actors/actor_runtime.h"
#include "net/server.h"

namespace pyflame_rt {
namespace {

int usage() {
  std::cerr
      << "usage: pyflame-rt serve --model NAME=PATH [--model ...] [--repository DIR]\n"
         "         [--host HOST] [--http-port 8000] [--http-threads 1] [--max-body-bytes N]\n"
         "         [--grpc-port 8001] [--grpc-max-concurrent-rpcs N] [--zmq-pull ENDPOINT] [--zmq-pub ENDPOINT]\n"
         "         [--zmq-sub ENDPOINT]\n"
         "         [--sequence-idle-ms 1000]\n"
         "         [--max-batch-size 8] [--batch-timeout-us 0] [--preferred-batch-sizes 4,8]\n"
         "         [--max-queue 1024] [--request-timeout-ms 60000] [--device-actors 2] [--threads 1]\n"
         "       pyflame-rt serve MODEL --stage-port PORT [--name NAME] [--host HOST] [--threads N]\n"
         "         (the CAF stage server for remote pipeline stages)\n";
  return 2;
}

int fail(const Status& st) {
  std::cerr << "error: " << st.to_string() << "\n";
  return 1;
}

Expected<long long> number(const std::string& option, const std::string& text, long long lo, long long hi) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || v < lo || v > hi) {
    return invalid_argument(option, ": expected a number in [", lo, ", ", hi, "], got '", text, "'");
  }
  return v;
}

Status parse(const std::vector<std::string>& args, net::ServerOptions* o) {
  net::ModelConfig& m = o->model_defaults;
  m.batching.batch_timeout_ms = 0;  // as Triton: no added wait unless asked for
  // Throughput-first defaults (docs/performance.md, serving): two batches computing at once,
  // each on one core. Measured on 2 shared cores with tiny_cnn, 32 connections: 6045
  // inferences/s with 1 thread x 2 device actors, 2781/s with 1 x 1, 59/s with one
  // 2-thread OpenMP team (its barriers spin while the I/O and actor threads wait for a core).
  m.session.num_threads = 1;
  m.batching.device_actors = 2;
  for (size_t i = 0; i < args.size(); i += 2) {
    const std::string& key = args[i];
    if (i + 1 >= args.size()) return invalid_argument(key, ": expected a value");
    const std::string& v = args[i + 1];
    auto num = [&](long long lo, long long hi) { return number(key, v, lo, hi); };
    if (key == "--model") {
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
        return invalid_argument("--model: expected NAME=PATH, got '", v, "'");
      }
      o->models.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (key == "--repository") {
      o->repository_dir = v;
    } else if (key == "--host") {
      o->host = v;
    } else if (key == "--http-port") {
      ASSIGN_OR_RETURN(long long p, num(-1, 65535));
      o->http_port = static_cast<int>(p);
    } else if (key == "--http-threads") {
      ASSIGN_OR_RETURN(long long n, num(1, 256));
      o->http_threads = static_cast<int>(n);
    } else if (key == "--max-body-bytes") {
      ASSIGN_OR_RETURN(long long n, num(1024, 1LL << 40));
      o->max_body_bytes = static_cast<size_t>(n);
    } else if (key == "--grpc-port") {
      ASSIGN_OR_RETURN(long long p, num(-1, 65535));
      o->grpc_port = static_cast<int>(p);
    } else if (key == "--grpc-max-concurrent-rpcs") {
      ASSIGN_OR_RETURN(long long n, num(0, 1 << 20));
      o->grpc_max_concurrent_rpcs = static_cast<int>(n);
    } else if (key == "--sequence-idle-ms") {
      ASSIGN_OR_RETURN(long long n, num(1, 86400000));
      o->sequence_idle_ms = static_cast<int>(n);
    } else if (key == "--zmq-pull") {
      o->zmq_pull = v;
    } else if (key == "--zmq-pub") {
      o->zmq_pub = v;
    } else if (key == "--zmq-sub") {
      o->zmq_sub = v;
    } else if (key == "--max-batch-size") {
      ASSIGN_OR_RETURN(long long n, num(1, 4096));
      m.batching.max_batch_size = static_cast<int>(n);
    } else if (key == "--batch-timeout-us") {
      ASSIGN_OR_RETURN(long long n, num(0, 60000000));
      m.batching.batch_timeout_ms = static_cast<double>(n) / 1000.0;
    } else if (key == "--preferred-batch-sizes") {
      m.batching.preferred_batch_sizes.clear();
      std::stringstream ss(v);
      std::string part;
      while (std::getline(ss, part, ',')) {
        ASSIGN_OR_RETURN(long long n, number(key, part, 1, 4096));
        m.batching.preferred_batch_sizes.push_back(static_cast<int>(n));
      }
    } else if (key == "--max-queue") {
      ASSIGN_OR_RETURN(long long n, num(1, 1 << 24));
      m.batching.max_queue_size = static_cast<int>(n);
    } else if (key == "--request-timeout-ms") {
      ASSIGN_OR_RETURN(m.batching.request_timeout_ms, num(1, 86400000));
    } else if (key == "--device-actors") {
      ASSIGN_OR_RETURN(long long n, num(1, 64));
      m.batching.device_actors = static_cast<int>(n);
    } else if (key == "--threads") {
      ASSIGN_OR_RETURN(long long n, num(0, 1024));
      m.session.num_threads = static_cast<int>(n);
    } else {
      return invalid_argument("unknown option '", key, "'");
    }
  }
  if (o->models.empty() && o->repository_dir.empty()) {
    return invalid_argument("nothing to serve: give --model NAME=PATH or --repository DIR");
  }
  return m.validate();
}

}  // namespace

int model_server_command(const std::vector<std::string>& args) {
  net::ServerOptions options;
  if (Status st = parse(args, &options); !st.ok()) {
    std::cerr << "error: " << st.message() << "\n";
    return usage();
  }
  // Block the stop signals before any thread starts, so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = net::Server::start(options);
  if (!server.ok()) return fail(server.status());
  for (const auto& w : (*server)->warnings()) std::cerr << "warning: " << w << "\n";
  for (const auto& name : (*server)->repository()->model_names()) std::cout << "model " << name << " ready\n";
  // Scripts wait for these lines to learn the ports (--http-port 0 picks a free one).
  for (const auto& a : (*server)->addresses()) std::cout << "serving " << a << "\n";
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::cout << "stopping" << std::endl;
  (*server)->stop();
  server->reset();
  shutdown_actor_runtime();
  return 0;
}

}  // namespace pyflame_rt
