#!/usr/bin/env bash
# Builds CAF's core and io libraries with ThreadSanitizer into a prefix, for `make sanitize-tsan`.
#
# Why: Debian's libcaf_core is not built with TSan, so TSan cannot see the synchronisation of
# a message send and its receive (the mailbox is inside libcaf_core); every object handed from
# one actor to another in a message is then reported as a race (docs/reliability.md,
# "Sanitizers"). The same source Debian builds (0.17.6, `apt-get source actor-framework`),
# with the same compiler as the TSan build of PyFlameRT and the same log level as Debian's
# build_config.hpp (QUIET), so our code compiles against identical headers.
#
# Usage: tools/build_caf_tsan.sh PREFIX
#   PREFIX/src      the source (downloaded once with apt-get source: needs a deb-src line)
#   PREFIX/build    the CMake build
#   PREFIX/include, PREFIX/lib   the installed headers and libcaf_core.so / libcaf_io.so
# Nothing is done when PREFIX/lib/libcaf_io.so exists.
set -euo pipefail

prefix=$(realpath -m "${1:?usage: $0 PREFIX}")
version=0.17.6
if [[ -e "$prefix/lib/libcaf_io.so" ]]; then
  echo "CAF $version with TSan is in $prefix"
  exit 0
fi
mkdir -p "$prefix/src"
src="$prefix/src/actor-framework-$version"
if [[ ! -d "$src" ]]; then
  tarball=$(ls "$prefix"/src/actor-framework_"$version".orig.tar.gz 2>/dev/null || true)
  if [[ -z "$tarball" ]]; then
    # Only the upstream tarball is needed (Debian's packaging patches touch the build, not
    # the sources); --download-only does not need dpkg-dev's unpacking.
    (cd "$prefix/src" && apt-get source --download-only "actor-framework=$version-2.1" || true)
    tarball="$prefix/src/actor-framework_$version.orig.tar.gz"
    if [[ ! -f "$tarball" ]]; then
      echo "error: could not download actor-framework $version's source with apt-get source" >&2
      echo "(it needs a deb-src line for bookworm in /etc/apt/sources.list.d and apt-get update)" >&2
      exit 1
    fi
  fi
  tar -xzf "$tarball" -C "$prefix/src"
fi
# Debian's one source change: receive_buffer.hpp uses std::numeric_limits without <limits>
# (GCC 12 does not include it transitively). The installed headers differ from upstream's
# only by this line, so objects compiled against /usr/include/caf match this build.
rb="$src/libcaf_io/caf/io/network/receive_buffer.hpp"
grep -q '#include <limits>' "$rb" || sed -i 's|#include <memory>|#include <limits>\n#include <memory>|' "$rb"

# -O1 -g1 as the rest of the sanitizer build; no examples, tools, tests, OpenSSL, OpenCL or
# Python bindings: PyFlameRT links only libcaf_core and libcaf_io.
cmake -S "$src" -B "$prefix/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
  -DCAF_LOG_LEVEL=QUIET \
  -DCAF_NO_EXAMPLES=yes -DCAF_NO_TOOLS=yes -DCAF_NO_UNIT_TESTS=yes -DCAF_NO_BENCHMARKS=yes \
  -DCAF_NO_OPENSSL=yes -DCAF_NO_OPENCL=yes -DCAF_NO_PYTHON=yes -DCAF_NO_SUMMARY=yes
cmake --build "$prefix/build" -j 2
cmake --install "$prefix/build"
# PyFlameRT's TSan build keeps compiling against /usr/include/caf (Debian's headers) and links
# this library: that holds only while the two sets of headers are the same.
if ! diff -r -q -x openssl /usr/include/caf "$prefix/include/caf"; then
  echo "error: $prefix/include/caf differs from Debian's /usr/include/caf (above)" >&2
  exit 1
fi
echo "CAF $version with TSan installed in $prefix"
