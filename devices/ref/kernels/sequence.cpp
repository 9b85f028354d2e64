// Reference kernels: sequence group (to be filled).
#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {

void register_sequence_kernels(KernelRegistry& r) { (void)r; }

}  // namespace pyflame_rt
