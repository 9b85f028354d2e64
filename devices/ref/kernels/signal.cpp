// Reference kernels: signal group (to be filled).
#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {

void register_signal_kernels(KernelRegistry& r) { (void)r; }

}  // namespace pyflame_rt
