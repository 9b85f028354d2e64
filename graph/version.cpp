#include "graph/version.h"

#ifndef PFRT_VERSION
#error "PFRT_VERSION is set by graph/CMakeLists.txt from project(VERSION)"
#endif
#ifndef PFRT_BUILD_TYPE
#define PFRT_BUILD_TYPE "unknown"
#endif

namespace pyflame_rt {

const char* version_string() { return PFRT_VERSION; }

std::string build_info() {
  std::string compiler;
#if defined(__clang__)
  compiler = "Clang " __clang_version__;
#elif defined(__GNUC__)
  compiler = "GCC " __VERSION__;
#endif
  return std::string("PyFlameRT ") + PFRT_VERSION + ", " + PFRT_BUILD_TYPE + ", " + compiler;
}

}  // namespace pyflame_rt
