// How long OpenMP's idle workers spin before they sleep.
//
// libgomp's workers (oneDNN's intra-op team) spin for ~300k iterations (milliseconds on these
// CPUs) after every parallel region. When other processes share the cores, a spinning waiter
// keeps the core its descheduled partner needs, and a 2-thread run collapses: MobileNetV2 went
// from 8 ms to 447 ms p50 beside two busy processes on 2 cores, ONNX Runtime stayed at 26 ms.
// A short spin (~tens of microseconds) still bridges the gap between back-to-back kernels and
// measured the same on a quiet machine. libgomp reads the setting once, when it is loaded,
// so it must be in the environment before the process starts (or, for Python, before our
// native module loads: python/pyflame_rt/__init__.py sets the same value). A value the user
// set (GOMP_SPINCOUNT or OMP_WAIT_POLICY) always wins.
#pragma once

namespace pyflame_rt {

constexpr const char* kOmpSpinCount = "1000";

// For programs: when the environment does not choose a wait policy, sets the short spin and
// re-executes the program with it (argv unchanged). Returns (doing nothing) when the user
// chose one, when it is already set, or if re-executing fails.
void reexec_with_short_omp_spin(char** argv);

}  // namespace pyflame_rt
