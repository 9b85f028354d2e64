// The runtime's version and build description. The version is written once, in the top-level
// CMakeLists.txt's project(); everything else (Python's __version__, get_version_string(),
// the CLI) reads it from here.
//
//   std::cout << pyflame_rt::version_string();   // "0.1.0"
#pragma once

#include <string>

#include "graph/version_config.h"  // PFRT_VERSION_STRING (generated into the build tree)

namespace pyflame_rt {

const char* version_string();
// The version of the libpyflame_rt.so a program is linked with (defined in that library only).
const char* library_version();
// One line: version, build type, compiler ("PyFlameRT 0.1.0, Release, GCC 12.2.0").
std::string build_info();

}  // namespace pyflame_rt
