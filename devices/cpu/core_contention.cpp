#include "devices/cpu/core_contention.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

namespace pyflame_rt {
namespace cpu {

std::optional<SchedReading> parse_schedstat(const std::string& text) {
  const char* p = text.c_str();
  char* end = nullptr;
  SchedReading r;
  r.cpu_ns = std::strtoull(p, &end, 10);
  if (end == p || *end != ' ') return std::nullopt;
  p = end + 1;
  r.wait_ns = std::strtoull(p, &end, 10);
  if (end == p || (*end != ' ' && *end != '\n' && *end != '\0')) return std::nullopt;
  return r;
}

std::optional<SystemCpuReading> parse_proc_stat_cpu(const std::string& text) {
  if (text.compare(0, 4, "cpu ") != 0) return std::nullopt;
  const char* p = text.c_str() + 4;
  SystemCpuReading r;
  for (int field = 0; field < 8; ++field) {  // user nice system idle iowait irq softirq steal
    char* end = nullptr;
    const uint64_t v = std::strtoull(p, &end, 10);
    if (end == p) return field >= 4 ? std::optional<SystemCpuReading>(r) : std::nullopt;  // old kernels: fewer
    if (field == 1) r.nice_ticks = v;
    r.total_ticks += v;
    p = end;
  }
  return r;
}

void ContentionMonitor::take_system(const SystemCpuReading& system) {
  if (has_last_system_ && system.total_ticks >= last_system_.total_ticks &&
      system.nice_ticks >= last_system_.nice_ticks) {
    niced_ticks_ = kNicedDecay * niced_ticks_ + static_cast<double>(system.nice_ticks - last_system_.nice_ticks);
    niced_total_ = kNicedDecay * niced_total_ + static_cast<double>(system.total_ticks - last_system_.total_ticks);
  }
  has_last_system_ = true;
  last_system_ = system;
}

bool ContentionMonitor::update(std::chrono::steady_clock::time_point now, const SchedReading& reading,
                               const std::optional<SystemCpuReading>& system) {
  if (system) take_system(*system);
  if (!has_last_ || reading.cpu_ns < last_.cpu_ns || reading.wait_ns < last_.wait_ns) {
    has_last_ = true;  // the first reading (or a thread's counters that went back) starts over
    last_ = reading;
    return contended_;
  }
  const uint64_t cpu = reading.cpu_ns - last_.cpu_ns, wait = reading.wait_ns - last_.wait_ns;
  if (cpu + wait < kMinRunnableNs) return contended_;  // mostly asleep: too little to judge; keep the base
  last_ = reading;
  const double share = static_cast<double>(wait) / static_cast<double>(cpu + wait);
  share_ = 0.5 * share_ + 0.5 * share;
  if (!contended_ && share_ >= kContendedShare && niced_share() < kNicedShareLimit) {
    if (trying_full_team_) hold_ = std::min(2 * hold_, kMaxContendedHold);  // the load lasts
    contended_ = true;
    trying_full_team_ = false;
    contended_since_ = now;
  } else if (!contended_ && trying_full_team_) {
    trying_full_team_ = false;  // the full team did not wait: the load is gone
    hold_ = kContendedHold;
  } else if (contended_ && now - contended_since_ >= hold_) {
    // The full team again: a shrunk team does not show whether the full one would still
    // wait. The smoothed share is kept, so one more window of waiting shrinks it at once.
    contended_ = false;
    trying_full_team_ = true;
  }
  return contended_;
}

namespace {

std::atomic<uint64_t> g_contended_runs{0};

std::atomic<bool>& adaptation_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("PFRT_ADAPT_THREADS");
    return !(v && std::strcmp(v, "0") == 0);
  }()};
  return on;
}

// The start of a small /proc file (nullopt when it cannot be read).
std::optional<std::string> read_proc_start(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<SchedReading> read_own_schedstat() {
  auto text = read_proc_start("/proc/thread-self/schedstat");
  return text ? parse_schedstat(*text) : std::nullopt;
}

// /proc/stat's first line (the kernel formats the whole file: ~12 us, once per window).
std::optional<SystemCpuReading> read_system_cpu() {
  auto text = read_proc_start("/proc/stat");
  return text ? parse_proc_stat_cpu(*text) : std::nullopt;
}

struct ThreadState {
  ContentionMonitor monitor;
  std::chrono::steady_clock::time_point next_read{};
  bool unreadable = false;  // no schedstat here: never adapt on this thread
};

}  // namespace

int uncontended_threads(int threads) {
  if (threads <= 1 || !thread_adaptation_enabled()) return threads;
  thread_local ThreadState state;
  if (state.unreadable) return threads;
  const auto now = std::chrono::steady_clock::now();
  if (now >= state.next_read) {
    state.next_read = now + kContentionWindow;
    auto reading = read_own_schedstat();
    if (!reading) {
      state.unreadable = true;
      return threads;
    }
    state.monitor.update(now, *reading, read_system_cpu());
  }
  if (!state.monitor.contended()) return threads;
  g_contended_runs.fetch_add(1, std::memory_order_relaxed);
  return 1;
}

uint64_t contended_runs() { return g_contended_runs.load(std::memory_order_relaxed); }

bool thread_adaptation_enabled() { return adaptation_flag().load(std::memory_order_relaxed); }
void set_thread_adaptation(bool on) { adaptation_flag().store(on, std::memory_order_relaxed); }

}  // namespace cpu
}  // namespace pyflame_rt
