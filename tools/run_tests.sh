#!/usr/bin/env bash
# Runs every test: ONNX node conformance (failures only those named in node_exclusions.txt), the C++ GoogleTest suites through
# ctest, then the Python tests with pytest (last, so its summary closes the run).
set -euo pipefail
BUILD=${1:-build}
PY=/usr/bin/python3
export PFRT_VERIFY_PASSES=1  # every pass is checked to leave a valid graph
# Runs keep the team they ask for, however loaded the machine running the tests is (the tests
# check what a team of N threads does and which plans it builds); the adaptation to contended
# cores (devices/cpu/core_contention.h) is checked by its own test, which turns it on.
export PFRT_ADAPT_THREADS=0
export PYTHONPATH="$PWD/$BUILD/python${PYTHONPATH:+:$PYTHONPATH}"

echo "== ONNX node conformance"
$PY tests/conformance/run_node_tests.py --data "$BUILD/onnx-node-tests" \
    --exclusions tests/conformance/node_exclusions.txt --list-failures "$BUILD/node-test-failures.txt"

echo "== C++ tests (ctest)"
ctest --test-dir "$BUILD" --output-on-failure -j 2

echo "== Python tests (pytest)"
$PY -m pytest -q tests/python
