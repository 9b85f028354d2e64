#include "devices/omp_wait.h"

#include <unistd.h>

#include <cstdlib>

namespace pyflame_rt {

void reexec_with_short_omp_spin(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") || std::getenv("OMP_WAIT_POLICY")) return;
  if (setenv("GOMP_SPINCOUNT", kOmpSpinCount, 0) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: run on with the default spin
}

}  // namespace pyflame_rt
