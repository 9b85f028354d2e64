"""ONNX Runtime as a reference peer from Python, through onnxruntime-node (npm).

    from ort_reference import run_ort
    outputs = run_ort("model.onnx", {"input": x}, threads=1)   # dict name -> np.ndarray

The npm package is installed by `make build` into build/npm; ensure_ort() installs it when
missing (npm only).
"""

import json
import os
import subprocess
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_PREFIX = os.path.join(REPO, "build", "npm")


def ensure_ort(prefix=DEFAULT_PREFIX):
    """Installs onnxruntime-node into PREFIX/node_modules if it is not there yet."""
    modules = os.path.join(prefix, "node_modules")
    if not os.path.isdir(os.path.join(modules, "onnxruntime-node")):
        os.makedirs(prefix, exist_ok=True)
        subprocess.check_call(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                               "--prefix", prefix, "onnxruntime-node"])
    return modules


def run_ort(model_path, feeds, threads=1, prefix=DEFAULT_PREFIX):
    modules = ensure_ort(prefix)
    with tempfile.TemporaryDirectory() as tmp:
        args = ["node", os.path.join(HERE, "ort_run.js"), model_path, os.path.join(tmp, "out")]
        for i, (name, value) in enumerate(feeds.items()):
            path = os.path.join(tmp, f"in{i}.npy")
            np.save(path, np.ascontiguousarray(value))
            args.append(f"{name}={path}")
        args += ["--threads", str(threads)]
        env = dict(os.environ, ORT_NODE_MODULES=modules)
        subprocess.run(args, check=True, env=env, capture_output=True, timeout=600)
        with open(os.path.join(tmp, "out", "outputs.json")) as f:
            index = json.load(f)
        return {name: np.load(os.path.join(tmp, "out", file)) for name, file in index.items()}
