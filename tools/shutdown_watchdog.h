// A bound on a server's shutdown (`pyflame-rt serve`, both kinds): armed at SIGTERM, it waits
// `grace`; if the shutdown has not finished by then it writes on stderr what was still running
// (the phase the shutdown was in, and whatever `report` says) and ends the process with
// kShutdownTimeoutExit instead of letting it hang. A server stops its runs, its connections
// and its actors well within the default grace; the watchdog is for what does not (a native
// kernel that never checks, a peer or a library that does not let go).
//
//   ShutdownWatchdog watchdog(std::chrono::milliseconds(10000), [&] { return server->still_running(); });
//   watchdog.phase("stopping the stage server");
//   server->stop();
//   watchdog.phase("stopping the actor system");
//   shutdown_actor_runtime([&](const std::string& p) { watchdog.phase(p); });
//   watchdog.disarm();  // or its destructor: the shutdown finished in time
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace pyflame_rt {

// The exit status of a shutdown that passed its grace (1 is a failure to serve, 2 a usage error).
constexpr int kShutdownTimeoutExit = 3;
// --shutdown-grace-ms's default and its bounds.
constexpr int64_t kDefaultShutdownGraceMs = 10000;
constexpr int64_t kMaxShutdownGraceMs = 3600000;

class ShutdownWatchdog {
 public:
  // `report` (may be empty) is called on the watchdog's thread when the grace passes: it must
  // only read what stays alive until disarm() (counters, atomics).
  ShutdownWatchdog(std::chrono::milliseconds grace, std::function<std::string()> report);
  ~ShutdownWatchdog();  // disarm()
  ShutdownWatchdog(const ShutdownWatchdog&) = delete;
  ShutdownWatchdog& operator=(const ShutdownWatchdog&) = delete;

  // What the shutdown is doing now (named in the report).
  void phase(std::string what);
  // The shutdown finished: the process goes on to exit normally. Idempotent.
  void disarm();

 private:
  void watch();

  const std::chrono::milliseconds grace_;
  const std::chrono::steady_clock::time_point start_;
  std::function<std::string()> report_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::string phase_ = "starting the shutdown";
  std::thread thread_;
};

}  // namespace pyflame_rt
