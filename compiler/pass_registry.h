// Every pass by its stable name: the shared pipeline (pipeline.h) and each device's own pass
// list (Device::pass_names) create passes here, and disabled_passes is checked against it.
//
//   std::unique_ptr<Pass> p = make_pass("layout_assignment");   // nullptr if unknown
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/pass.h"

namespace pyflame_rt {

std::unique_ptr<Pass> make_pass(const std::string& name);
// Every registered pass name, in a stable order.
std::vector<std::string> all_pass_names();

}  // namespace pyflame_rt
