#include "graph/version.h"

#ifndef PFRT_BUILD_TYPE
#define PFRT_BUILD_TYPE "unknown"
#endif

namespace pyflame_rt {

const char* version_string() { return PFRT_VERSION_STRING; }

std::string build_info() {
  std::string compiler;
#if defined(__clang__)
  compiler = "Clang " __clang_version__;
#elif defined(__GNUC__)
  compiler = "GCC " __VERSION__;
#endif
  return std::string("PyFlameRT ") + PFRT_VERSION_STRING + ", " + PFRT_BUILD_TYPE + ", " + compiler;
}

}  // namespace pyflame_rt
