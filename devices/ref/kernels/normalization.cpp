// Reference kernels: normalization group (to be filled).
#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {

void register_normalization_kernels(KernelRegistry& r) { (void)r; }

}  // namespace pyflame_rt
