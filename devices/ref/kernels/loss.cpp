// Reference kernels: loss group (to be filled).
#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {

void register_loss_kernels(KernelRegistry& r) { (void)r; }

}  // namespace pyflame_rt
