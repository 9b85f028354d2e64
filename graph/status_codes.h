// Every status code's name, in the order of the StatusCode enum (kOk's "OK" first): the
// Python binding builds its exception table from this list (pyflame_rt.errors).
#pragma once

#include <string>
#include <vector>

#include "graph/status.h"

namespace pyflame_rt {

std::vector<std::string> status_code_names();

}  // namespace pyflame_rt
