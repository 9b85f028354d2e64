// How idle OpenMP workers wait between parallel regions, chosen once before libgomp starts.
//
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded, and offers no call
// to change them later. Its default spins an idle worker for ~300000 iterations (milliseconds)
// after each parallel region. On a quiet machine that is what we want (the next kernel starts
// at once), but when other processes keep the cores busy a spinning worker takes the core its
// descheduled teammate needs, every barrier waits for that teammate, and 2-thread runs take
// 5-20x ONNX Runtime's time (docs/performance.md, "Contention"). So, unless the user chose a
// wait policy or a spin count, a process that starts on a loaded machine (1-minute load
// average, or the processes runnable right now besides this one, >= online CPUs: the load
// average lags a load that began less than a minute ago) gets the passive policy: workers block at once and the scheduler
// gives their cores to whoever can run. The CLI decides at the start of main and executes
// itself again with the variable set (tools/omp_reexec.h), the Python package before its
// extension loads libgomp (python/pyflame_rt/_omp_env.py, the same rule).
#pragma once

#include <optional>
#include <string>

namespace pyflame_rt {
namespace cpu {

struct EnvSetting {
  std::string name, value;
};

// The machine's load as the choice sees it (negative: unknown).
struct LoadFigures {
  double load_1min = -1;    // /proc/loadavg, first field
  int runnable_others = -1; // /proc/stat procs_running minus this process's running thread
  int online_cpus = 0;
};

// The variable to set, given the user's OMP_WAIT_POLICY and GOMP_SPINCOUNT (nullptr: unset)
// and the load. None when the user set either variable, or no known load figure reaches the
// CPU count.
std::optional<EnvSetting> choose_omp_wait_setting(const char* wait_policy, const char* spin_count,
                                                  const LoadFigures& load);

// This machine's figures (from /proc).
LoadFigures read_load_figures();

// Applies choose_omp_wait_setting with this process's environment and the machine's load;
// returns the setting it applied. Takes effect only when it runs before libgomp is loaded.
std::optional<EnvSetting> apply_omp_wait_policy_for_load();

}  // namespace cpu
}  // namespace pyflame_rt
