// The pyflame-rt executable's wait policy for libgomp (devices/cpu/omp_wait_policy.h). libgomp
// reads the environment in its constructor, before main, and a variable set from the
// executable's .preinit_array does not survive: libc's own initialisation, which runs after
// it, resets environ to the process's original environment. So main sets the variable and
// executes itself again (once: the re-executed process finds the variable set and goes on).
// That second start costs ~40 ms (`pyflame-rt --version`: 86 against 46 ms with
// GOMP_SPINCOUNT already set, Zen 5), which setting OMP_WAIT_POLICY or GOMP_SPINCOUNT avoids.
#pragma once

namespace pyflame_rt {

// Returns only when no re-execution was needed or it failed (the run then goes on with
// libgomp's default spin).
void reexec_with_omp_wait_policy(char** argv);

}  // namespace pyflame_rt
