"""`import pyflame_rt` loads the core only: the serving extension (gRPC, ZeroMQ, Boost.Beast), the
serving/compress/quantization modules and the actor system wait for their first use, and every
public name still resolves. Each check runs in a fresh interpreter (this one has imported
everything already)."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")


def run_child(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def loaded_libraries_snippet():
    return """
def loaded():
    with open('/proc/self/maps') as f:
        return sorted({line.split()[-1].rsplit('/', 1)[-1] for line in f if '.so' in line})
"""


def test_import_loads_neither_servers_nor_their_libraries():
    state = run_child(loaded_libraries_snippet() + f"""
import json, sys
import numpy as np
import pyflame_rt as rt
after_import = loaded()
s = rt.InferenceSession({TINY_CNN!r})
s.run(None, {{s.get_inputs()[0].name: np.zeros((1, 3, 32, 32), np.float32)}})
print(json.dumps({{
    "libs": after_import,
    "modules": [m for m in ("pyflame_rt.serving", "pyflame_rt._pyflame_rt_serving", "pyflame_rt.compress",
                            "pyflame_rt.quantization", "pyflame_rt.fastapi_serving", "onnx", "grpc")
                if m in sys.modules],
    "actor_threads": rt.actor_runtime_threads(),
}}))
""")
    libs = state["libs"]
    assert any(name.startswith("_pyflame_rt.") for name in libs), libs
    heavy = [name for name in libs if name.startswith(("_pyflame_rt_serving", "libgrpc", "libzmq", "libgssapi",
                                                       "libabsl", "libssl"))]
    assert heavy == [], heavy
    assert state["modules"] == []
    assert state["actor_threads"] == 0  # a plain session's run starts no actor system


def test_servers_load_on_first_use_and_names_resolve():
    state = run_child(loaded_libraries_snippet() + """
import json
import pyflame_rt as rt
from pyflame_rt import compress
from pyflame_rt.serving import GRPCServer, ModelServer, MultiModelServer, fastapi_app
before = [n for n in loaded() if n.startswith(("_pyflame_rt_serving", "libgrpc++"))]
server = MultiModelServer(models={"cnn": %r}, port=0)
server.start_background()
after = [n for n in loaded() if n.startswith(("_pyflame_rt_serving", "libgrpc++"))]
models = server._native.models()
server.stop()
print(json.dumps({"before": before, "after": after, "models": models,
                  "names": [hasattr(rt, n) for n in rt.__all__],
                  "submodules": [rt.serving.ModelServer is ModelServer, rt.quantization.QuantConfig is not None,
                                 compress is rt.compress, GRPCServer.__name__, callable(fastapi_app)]}))
""" % TINY_CNN)
    assert state["before"] == []
    assert sorted(n.split(".")[0] for n in state["after"]) == ["_pyflame_rt_serving", "libgrpc++"]
    assert state["models"] == ["cnn"]
    assert all(state["names"])
    assert state["submodules"] == [True, True, True, "GRPCServer", True]
