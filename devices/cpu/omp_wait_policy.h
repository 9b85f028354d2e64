// How idle OpenMP workers wait between parallel regions, chosen once before libgomp starts.
//
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded, and offers no call
// to change them later. Its default spins an idle worker for 300000 iterations (milliseconds)
// after each parallel region: on a quiet machine harmless, but when other processes keep the
// cores busy a spinning worker takes the core its descheduled teammate needs, every barrier
// waits for that teammate, and 2-thread runs took several times ONNX Runtime's time
// (docs/performance.md, "Contention"). The passive policy (block at once) avoids that but
// costs 10-40% at 2 threads on quiet cores, where each parallel region then wakes a sleeping
// worker. So, unless the user chose a wait policy or a spin count, workers spin briefly
// (kBriefSpinCount: tens to hundreds of microseconds, longer than the gaps between the steps
// of a run) and then block, as ONNX Runtime's pool does. This used to depend on the load when
// the process started (passive when loaded), which left a process started beside a passing
// load 40% slower for its whole life; with the brief spin and core_contention.h's thread
// adaptation, no start-time choice is needed (docs/performance.md, stop 22).
//
// The CLI sets the variable at the start of main and executes itself again
// (tools/omp_reexec.h), the Python package before its extension loads libgomp
// (python/pyflame_rt/_omp_env.py, the same rule).
#pragma once

#include <optional>
#include <string>

namespace pyflame_rt {
namespace cpu {

struct EnvSetting {
  std::string name, value;
};

// libgomp's spin iterations (each a pause instruction, tens to a hundred-odd cycles depending
// on the CPU) before an idle worker blocks. Quietly, 10000 measured the same as the default
// 300000 on the bench models in two of three A/B runs (in the third, 7-16% slower on three
// small models at 2 threads); beside two busy processes it held where the default collapsed
// (docs/performance.md, stop 22).
constexpr const char* kBriefSpinCount = "10000";

// The variable to set, given the user's OMP_WAIT_POLICY and GOMP_SPINCOUNT (nullptr: unset):
// GOMP_SPINCOUNT=kBriefSpinCount, or none when the user set either (an empty value counts as
// set: the user asked for libgomp's default).
std::optional<EnvSetting> choose_omp_wait_setting(const char* wait_policy, const char* spin_count);

// Applies choose_omp_wait_setting to this process's environment; returns the setting it
// applied. Takes effect only when it runs before libgomp is loaded.
std::optional<EnvSetting> apply_omp_wait_setting();

}  // namespace cpu
}  // namespace pyflame_rt
