#include "shutdown_watchdog.h"

#include <unistd.h>

#include <string>

namespace pyflame_rt {

ShutdownWatchdog::ShutdownWatchdog(std::chrono::milliseconds grace, std::function<std::string()> report)
    : grace_(grace), start_(std::chrono::steady_clock::now()), report_(std::move(report)) {
  thread_ = std::thread([this] { watch(); });
}

ShutdownWatchdog::~ShutdownWatchdog() { disarm(); }

void ShutdownWatchdog::phase(std::string what) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = std::move(what);
}

void ShutdownWatchdog::disarm() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    disarmed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ShutdownWatchdog::watch() {
  std::string phase;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_until(lock, start_ + grace_, [&] { return disarmed_; })) return;
    phase = phase_;
  }
  std::string still = report_ ? report_() : std::string();
  std::string text = "error: the shutdown did not finish within --shutdown-grace-ms " + std::to_string(grace_.count()) +
                     " ms; it was " + phase + (still.empty() ? std::string() : "; still running: " + still) +
                     "; exiting with status " + std::to_string(kShutdownTimeoutExit) + "\n";
  // write(2) and _exit: nothing here may wait on what hangs (stdio's locks, destructors, atexit).
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t w = ::write(STDERR_FILENO, p, left);
    if (w <= 0) break;
    p += w;
    left -= static_cast<size_t>(w);
  }
  ::_exit(kShutdownTimeoutExit);
}

}  // namespace pyflame_rt
