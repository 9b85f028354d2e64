#include "serve_command.h"

#include <csignal>
#include <filesystem>
#include <iostream>

#include "actors/actor_runtime.h"
#include "actors/inference_session.h"
#include "actors/remote_stage.h"

namespace pyflame_rt {
namespace {

int serve_usage() {
  std::cerr << "usage: pyflame-rt serve MODEL [--name NAME] [--host HOST] [--stage-port PORT] [--threads N]\n"
               "       (the KServe model server: pyflame-rt serve --model NAME=PATH ...)\n";
  return 2;
}

int serve_fail(const Status& st) {
  std::cerr << "error: " << st.to_string() << "\n";
  return 1;
}

// A whole decimal number in [lo, hi], or an error naming the option.
Expected<long> parse_number(const std::string& option, const std::string& text, long lo, long hi) {
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < lo || value > hi) {
    return invalid_argument(option, ": expected a number in [", lo, ", ", hi, "], got '", text, "'");
  }
  return value;
}

}  // namespace

int serve_command(const std::vector<std::string>& args) {
  if (args.empty()) return serve_usage();
  const std::string& model = args[0];
  std::string name = std::filesystem::path(model).stem().string();
  ServeAddress address;
  SessionOptions opts;
  for (size_t i = 1; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return serve_usage();
    const std::string& key = args[i];
    const std::string& value = args[i + 1];
    if (key == "--name") {
      name = value;
    } else if (key == "--host") {
      address.host = value;
    } else if (key == "--port" || key == "--stage-port") {  // --port: the older spelling
      auto port = parse_number(key, value, 0, 65535);
      if (!port.ok()) return serve_fail(port.status());
      address.port = static_cast<uint16_t>(*port);
    } else if (key == "--threads") {
      auto threads = parse_number("--threads", value, 0, 1024);
      if (!threads.ok()) return serve_fail(threads.status());
      opts.num_threads = static_cast<int>(*threads);
    } else {
      return serve_usage();
    }
  }
  // Block the stop signals before any thread starts, so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto session = InferenceSession::create(model, opts);
  if (!session.ok()) return serve_fail(session.status());
  auto server = StageServer::serve_model(name, std::shared_ptr<const InferenceSession>(std::move(*session)), address);
  if (!server.ok()) return serve_fail(server.status());
  // Scripts wait for this line to learn the port (--port 0 picks a free one).
  std::cout << "serving stage '" << name << "' (" << model << ") on " << address.host << ":" << (*server)->port()
            << std::endl;
  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::cout << "stopping after " << (*server)->frames_served() << " frames (" << (*server)->frames_failed()
            << " failed)" << std::endl;
  (*server)->stop();
  shutdown_actor_runtime();
  return 0;
}

}  // namespace pyflame_rt
