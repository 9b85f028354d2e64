"""The generated run.py scripts (tests/compiler/csl/golden) against a stand-in for the Cerebras
SDK runtime: every memcpy must carry exactly width x height x elements values (run.py asserts
it), every symbol must exist, and the outputs must come back with the model's shapes. The
device side is not simulated here (launch does nothing, d2h returns what h2d stored or zeros):
this checks the host-side tiling arithmetic, not the CSL."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "tests", "compiler", "csl", "golden")

FAKE_SDK = textwrap.dedent('''
    import numpy as np

    class MemcpyDataType:
        MEMCPY_32BIT = 32

    class MemcpyOrder:
        ROW_MAJOR = 0

    class SdkRuntime:
        def __init__(self, name, cmaddr=None):
            self.loaded = self.running = False
            self.memory = {}
            self.launched = []

        def get_id(self, symbol):
            return symbol

        def load(self):
            self.loaded = True

        def run(self):
            assert self.loaded
            self.running = True

        def memcpy_h2d(self, symbol, data, x, y, w, h, elems, streaming, order, data_type, nonblock):
            assert self.running and not streaming and data.dtype == np.float32
            assert data.size == w * h * elems
            self.memory[(symbol, x, y, w, h)] = data.copy()

        def memcpy_d2h(self, out, symbol, x, y, w, h, elems, streaming, order, data_type, nonblock):
            assert self.running and out.size == w * h * elems
            out[:] = self.memory.get((symbol, x, y, w, h), np.zeros(out.size, np.float32))

        def launch(self, name, nonblock):
            assert self.running
            self.launched.append(name)

        def stop(self):
            self.running = False
''')

CASES = {
    "gemv": ({"x": (1, 64)}, {"W": (32, 64), "b": (32,)}, {"y": (1, 32)}),
    "conv": ({"image": (1, 3, 8, 8)}, {"conv1.w": (4, 3, 3, 3), "conv1.b": (4,)}, {"p1": (1, 4, 4, 4)}),
    "eltwise": ({"x": (2, 50)}, {"bias": (50,)}, {"s": (2, 50)}),
    "summa": ({"A": (16, 12)}, {"B": (12, 8)}, {"C": (16, 8)}),
    "depthwise": ({"x": (1, 384, 16, 16)}, {"dw.w": (384, 1, 3, 3)}, {"y": (1, 384, 16, 16)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_run_py_moves_consistent_tiles(case, tmp_path):
    inputs, weights, outputs = CASES[case]
    sdk = tmp_path / "cerebras" / "sdk" / "runtime"
    sdk.mkdir(parents=True)
    for d in (tmp_path / "cerebras", tmp_path / "cerebras" / "sdk", sdk):
        (d / "__init__.py").write_text("")
    (sdk / "sdkruntimepybind.py").write_text(FAKE_SDK)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "inputs.npz", **{k: rng.standard_normal(s).astype(np.float32) for k, s in inputs.items()})
    (tmp_path / "weights").mkdir()
    for k, s in weights.items():
        np.save(tmp_path / "weights" / f"{k}.npy", rng.standard_normal(s).astype(np.float32))
    r = subprocess.run([sys.executable, os.path.join(GOLDEN, case, "run.py"), "--inputs", str(tmp_path / "inputs.npz"),
                        "--weights", str(tmp_path / "weights"), "--outputs", str(tmp_path / "out.npz")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    out = np.load(tmp_path / "out.npz")
    assert sorted(out.files) == sorted(outputs)
    for k, s in outputs.items():
        assert out[k].shape == s, k
