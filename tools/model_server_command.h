// `pyflame-rt serve --model NAME=PATH ...`: the KServe v2 model server (net/server.h) until
// SIGINT or SIGTERM.
#pragma once

#include <string>
#include <vector>

namespace pyflame_rt {

// args: the words after "serve" (options only; see model_server_usage()).
int model_server_command(const std::vector<std::string>& args);

}  // namespace pyflame_rt
