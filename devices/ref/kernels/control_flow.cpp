// Reference kernels: control_flow group (to be filled).
#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {

void register_control_flow_kernels(KernelRegistry& r) { (void)r; }

}  // namespace pyflame_rt
