// Whether the cores a run would spread over are taken by other work, as the calling thread
// sees it, and the team a run should use then.
//
// An OpenMP team needs all its threads on a core at once: each of a run's ~100 parallel
// regions (every oneDNN primitive) ends at a barrier that waits for its last thread. When
// other processes keep the cores busy, a teammate waits a scheduler time slice (milliseconds)
// for a core at many of those barriers, and a 2-thread run takes several times what one
// thread does (docs/performance.md, "Stop 21, AMD EPYC": MobileNetV2 at 2 threads 2.6-2.9x
// ONNX Runtime's p50 beside two busy processes, 0.96x at one thread). ONNX Runtime's pool lets
// the caller take every work item a descheduled helper has not started; oneDNN's OpenMP
// kernels split work statically, so a thread without a core only adds waiting. A run
// therefore gives up its extra threads, but for steps of milliseconds of work (step_threads.h,
// kContendedScale), while its calling thread is itself waiting for a core a good share of the
// time it could run.
//
// The measure is the calling thread's own: the share of its runnable time it spent on a run
// queue (/proc/thread-self/schedstat: CPU time, run-queue wait), over windows of at least
// kContentionWindow of wall time (one open/read/close of that small file per window, nothing
// on the runs between).
// Sleeping (between requests, at a barrier under the passive wait policy) is not runnable
// time, so an idle server or a quiet machine reads ~0. Waiting beside niced work does not
// count (kNicedShareLimit, from /proc/stat read in the same windows): it gives the core back
// at once, and shrinking the team there only made runs slower. Once contended, a thread stays so for
// at least kContendedHold, then tries its full team again (a shrunk team does not show
// whether the full one would still wait); a trial that still waits doubles the hold (up to
// kMaxContendedHold), one that does not resets it. PFRT_ADAPT_THREADS=0 turns the adaptation off.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace pyflame_rt {
namespace cpu {

constexpr std::chrono::milliseconds kContentionWindow{20};
constexpr std::chrono::milliseconds kContendedHold{1000};
// Each hold that ends in a window still contended doubles the next, up to this: under a
// lasting load the full team's trial runs (a window's worth each time; several times slower
// for a short model) would otherwise be ~2% of its runs and its p99 (audio_tdnn at 2 threads
// beside two busy processes: p99 4.8x ONNX Runtime's with a 1 s hold every time).
constexpr std::chrono::milliseconds kMaxContendedHold{8000};
// A window counts only when the thread was runnable for at least this long in it.
constexpr uint64_t kMinRunnableNs = 2'000'000;
// Run-queue share (halved at every window, plus half the window's own) at which the cores
// count as contended. MobileNetV2 at 2 threads, 20 ms windows (Zen 5, 2 cores): quiet, 0% at
// the median and 0.9% at p99; beside two busy processes 48% at the median; beside two nice-19
// ones (which yield at once, and ONNX Runtime's spinning pool barely notices) 0% at the
// median, 17% at p90, 24% at most. At 0.2 those windows shrank runs for no gain (MobileNetV2
// 4.7 ms against 3.6 without the adaptation).
constexpr double kContendedShare = 0.3;
// Share of all cores' time taken by niced processes (smoothed over ~0.4 s) from which waiting
// for a core does not count: niced work yields a core as soon as we want it back, and a team
// split beside it keeps its pace (two nice-19 processes on the 2 cores: MobileNetV2 at 2
// threads 3.5 ms with the full team, as ONNX Runtime, 4.7 shrunk), yet the calling thread
// waited >= 30% (smoothed) in a quarter of its 20 ms windows. Niced processes took 16-21% of
// the cores there; beside two busy ones at nice 0, 0.0%.
constexpr double kNicedShareLimit = 0.05;
// Weight of the past in the niced share at each window (0.95: ~20 windows, 0.4 s).
constexpr double kNicedDecay = 0.95;
// A program whose typical run takes less than this keeps its team on contended cores
// (CpuProgram::run_contended). A run that short seldom meets a teammate descheduled, while
// shrinking costs a one-thread plan build (a run of 25-31 ms in traces) and one-thread steps.
// Beside two busy processes, with the team kept apart (team_placement.h), audio_tdnn at 2 threads
// (~0.9 ms a run) took 0.82-0.89 ms p50 (p99 9.2-11.9 ms) unshrunk against 1.42-1.58 (p99
// 28-35 ms) shrunk; MobileNetV2 (~8 ms a run there) 5.1-9.1 ms shrunk, 8.2-8.7 unshrunk
// (docs/performance.md, stop 24).
constexpr std::chrono::microseconds kMinShrinkableRun{2000};

// One reading of a thread's scheduler statistics (nanoseconds since the thread started).
struct SchedReading {
  uint64_t cpu_ns = 0;
  uint64_t wait_ns = 0;
};

// "cpu_ns wait_ns timeslices" as /proc/*/schedstat gives it; nullopt when it is not that.
std::optional<SchedReading> parse_schedstat(const std::string& text);

// The machine's CPU time (clock ticks since boot, all cores) from /proc/stat's first line:
// what niced processes ran, and the total (user, nice, system, idle, iowait, irq, softirq,
// steal).
struct SystemCpuReading {
  uint64_t nice_ticks = 0;
  uint64_t total_ticks = 0;
};

// The "cpu  user nice system idle iowait irq softirq steal ..." line; nullopt when the text
// does not start with one.
std::optional<SystemCpuReading> parse_proc_stat_cpu(const std::string& text);

// The decision from successive readings of one thread (no I/O: tests feed it readings).
class ContentionMonitor {
 public:
  // Takes a reading made at `now` (and the machine's, when it could be read); returns whether
  // the cores count as contended.
  bool update(std::chrono::steady_clock::time_point now, const SchedReading& reading,
              const std::optional<SystemCpuReading>& system = std::nullopt);
  bool contended() const { return contended_; }
  double smoothed_share() const { return share_; }
  std::chrono::milliseconds hold() const { return hold_; }
  // Niced processes' share of all cores' time, smoothed (0 until two system readings).
  double niced_share() const { return niced_total_ > 0 ? niced_ticks_ / niced_total_ : 0; }

 private:
  void take_system(const SystemCpuReading& system);

  bool has_last_ = false;
  SchedReading last_;
  double share_ = 0;
  bool has_last_system_ = false;
  SystemCpuReading last_system_;
  double niced_ticks_ = 0, niced_total_ = 0;
  bool contended_ = false;
  bool trying_full_team_ = false;  // a hold has just ended: the next judged window decides
  std::chrono::milliseconds hold_ = kContendedHold;
  std::chrono::steady_clock::time_point contended_since_;
};

// `threads`, or 1 while the cores count as contended for runs on the calling thread (reads
// this thread's schedstat at most once per kContentionWindow).
int uncontended_threads(int threads);

// Runs that met contended cores (uncontended_threads gave 1), process-wide (for tests).
uint64_t contended_runs();

// Whether uncontended_threads may shrink a team: on unless PFRT_ADAPT_THREADS=0 (the test
// runner sets it: tests check what a team of N threads does). ThreadAdaptation sets it for a
// scope, process-wide.
bool thread_adaptation_enabled();
void set_thread_adaptation(bool on);

class ThreadAdaptation {
 public:
  explicit ThreadAdaptation(bool on) : saved_(thread_adaptation_enabled()) { set_thread_adaptation(on); }
  ~ThreadAdaptation() { set_thread_adaptation(saved_); }
  ThreadAdaptation(const ThreadAdaptation&) = delete;
  ThreadAdaptation& operator=(const ThreadAdaptation&) = delete;

 private:
  bool saved_;
};

}  // namespace cpu
}  // namespace pyflame_rt
