// Reference kernels: reduction group (to be filled).
#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {

void register_reduction_kernels(KernelRegistry& r) { (void)r; }

}  // namespace pyflame_rt
