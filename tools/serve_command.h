// `pyflame-rt serve`: serves a model as a remote stage until SIGINT or SIGTERM.
#pragma once

#include <string>
#include <vector>

namespace pyflame_rt {

// args: the words after "serve" (MODEL [--name NAME] [--host HOST] [--port PORT] [--threads N]).
int serve_command(const std::vector<std::string>& args);

}  // namespace pyflame_rt
