// `pyflame-rt compile MODEL -o MODEL.pfm [--opt all] [--input-shape NAME=1,3,224,224]
// [--precision fp32] [--cache-dir]`: compiles ahead of time into a plan file
// (session/plan_file.h) that InferenceSession("MODEL.pfm") runs directly.
#pragma once

#include <string>
#include <vector>

namespace pyflame_rt {

// `args` without "compile"; returns the process exit code (2: usage, 1: failure).
int compile_command(const std::vector<std::string>& args);

}  // namespace pyflame_rt
