#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds examples/cpp_inference.cpp out of tree
# against it twice, with find_package(PyFlameRT) and with pkg-config, and runs both builds on
# a bundled model. Nothing of the source or build tree is on their include or library paths.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PREFIX="$WORK/prefix"

cmake --install "$BUILD" --prefix "$PREFIX" > "$WORK/install.log"
test -f "$PREFIX/include/pyflame_rt/actors/inference_session.h" || test -f "$PREFIX/include/pyflame_rt/session/inference_session.h"
test -x "$PREFIX/bin/pyflame-rt"
"$PREFIX/bin/pyflame-rt" --version | grep -q "^pyflame-rt [0-9]"

MODEL="$SRC/examples/models/tiny_cnn.onnx"
check_output() {  # the example prints one line per output; tiny_cnn has "probs"
  grep -q "^output probs float32\[1,10\]" "$1" || { echo "unexpected output:"; cat "$1"; exit 1; }
}

# 1. CMake: find_package(PyFlameRT) -> PyFlameRT::pyflame_rt
cmake -S "$SRC/tests/packaging/consumer" -B "$WORK/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PREFIX" -DPFRT_EXAMPLE_SOURCE="$SRC/examples/cpp_inference.cpp" > "$WORK/configure.log"
cmake --build "$WORK/cmake-build" -j 2 > "$WORK/build.log" || { cat "$WORK/build.log"; exit 1; }
"$WORK/cmake-build/version_check"
"$WORK/cmake-build/cpp_inference" "$MODEL" > "$WORK/cmake-run.txt"
check_output "$WORK/cmake-run.txt"

# 2. pkg-config
PC_DIR=$(dirname "$(find "$PREFIX" -name pyflame_rt.pc | head -1)")
FLAGS=$(PKG_CONFIG_PATH="$PC_DIR" pkg-config --cflags --libs pyflame_rt)
g++ -O1 "$SRC/examples/cpp_inference.cpp" $FLAGS -o "$WORK/cpp_inference_pc"
"$WORK/cpp_inference_pc" "$MODEL" > "$WORK/pc-run.txt"
check_output "$WORK/pc-run.txt"
echo "packaging: install, find_package and pkg-config builds OK"
