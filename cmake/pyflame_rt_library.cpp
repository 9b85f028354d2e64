// The one source of libpyflame_rt.so itself: the library is the static layers linked whole
// (cmake/PyFlameRTInstall.cmake); this gives it the version, readable by dlsym or C++.
#include "graph/version.h"

namespace pyflame_rt {

const char* library_version() { return PFRT_VERSION_STRING; }

}  // namespace pyflame_rt
