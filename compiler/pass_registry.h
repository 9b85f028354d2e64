// Passes by name: every pass this build has, created from its stable name (what devices list in
// Device::pass_names and what SessionOptions.disabled_passes names).
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Pass> p, create_pass("wse_mesh_layout"));
//   bool changed = false;
//   RETURN_IF_ERROR(p->run(graph, changed));
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compiler/pass.h"

namespace pyflame_rt {

using PassFactory = std::function<std::unique_ptr<Pass>()>;

// kNotFound naming the known passes when `name` is none of them.
Expected<std::unique_ptr<Pass>> create_pass(const std::string& name);
// Every registered name, in registration order (the pipeline's passes first).
std::vector<std::string> registered_pass_names();

}  // namespace pyflame_rt
