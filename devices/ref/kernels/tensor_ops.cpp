// Reference kernels: tensor_ops group (to be filled).
#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {

void register_tensor_kernels(KernelRegistry& r) { (void)r; }

}  // namespace pyflame_rt
