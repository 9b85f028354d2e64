#include "omp_reexec.h"

#include <unistd.h>

#include "devices/cpu/omp_wait_policy.h"

namespace pyflame_rt {

void reexec_with_omp_wait_policy(char** argv) {
  if (!cpu::apply_omp_wait_setting()) return;
  execv("/proc/self/exe", argv);  // returns only on failure
}

}  // namespace pyflame_rt
