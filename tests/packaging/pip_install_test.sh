#!/usr/bin/env bash
# `pip install --no-build-isolation .` offline for /usr/bin/python3 (into a temporary target
# directory, not the system), then imports the installed package from outside the source tree
# and runs a bundled model with it. PYFLAME_RT_BUILD_DIR points setup.py at the existing build.
#   pip_install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cd "$SRC"
PYFLAME_RT_BUILD_DIR="$BUILD" PIP_NO_INDEX=1 /usr/bin/python3 -m pip install --no-build-isolation --no-deps \
  --no-index --quiet --target "$WORK/site" . > "$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; exit 1; }
cd "$WORK"
PYTHONPATH="$WORK/site" /usr/bin/python3 - "$SRC" "$WORK/site" <<'PY'
import os, re, sys
import numpy as np
src, site = sys.argv[1], sys.argv[2]
import pyflame_rt as rt
assert rt.__file__.startswith(site), rt.__file__
version = re.search(r"project\(PyFlameRT\s+VERSION\s+([0-9.]+)", open(os.path.join(src, "CMakeLists.txt")).read()).group(1)
assert rt.__version__ == version, (rt.__version__, version)
sess = rt.InferenceSession(os.path.join(src, "examples", "models", "tiny_cnn.onnx"))
(probs,) = sess.run(None, {"image": np.zeros((1, 3, 32, 32), np.float32)})
assert probs.shape == (1, 10) and abs(float(probs.sum()) - 1.0) < 1e-5, probs
print("pip install OK:", rt.__version__, rt.__file__)
PY
