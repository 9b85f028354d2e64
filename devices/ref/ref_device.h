// The reference device: every op on the plain C++ reference kernels (devices/ref/kernels), the
// correctness oracle every other device is compared against. Registered as "ref" (not listed
// among the available providers).
//
//   ASSIGN_OR_RETURN(auto exe, make_ref_device()->compile(graph));
#pragma once

#include <memory>

#include "devices/device.h"

namespace pyflame_rt {

std::unique_ptr<Device> make_ref_device();

}  // namespace pyflame_rt
