"""The generated run.py scripts (tests/compiler/csl/golden) against a stand-in for the Cerebras
SDK runtime with per-PE memory: every memcpy must carry exactly width x height x elements values
(run.py asserts it), every symbol must exist, and the outputs must come back with the model's
shapes. For the GEMV, depthwise and im2col goldens the stand-in also does what each PE's program does
(emulations written from pe_program.csl), and the outputs must equal numpy's: the host's tiling
and the PE program's data layout agree. No CSL is compiled or simulated here."""

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
    EMULATE = None  # set by a test: what a launched function does to the PEs' memory

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

        # Per-PE memory: (symbol, x, y) -> the PE's array, filled row-major as memcpy does.
        def memcpy_h2d(self, symbol, data, x, y, w, h, elems, streaming, order, data_type, nonblock):
            assert self.running and not streaming and data.dtype == np.float32
            assert data.size == w * h * elems
            blocks = data.reshape(h, w, elems)
            for j in range(h):
                for i in range(w):
                    self.memory[(symbol, x + i, y + j)] = blocks[j, i].copy()

        def memcpy_d2h(self, out, symbol, x, y, w, h, elems, streaming, order, data_type, nonblock):
            assert self.running and out.size == w * h * elems
            blocks = out.reshape(h, w, elems)
            for j in range(h):
                for i in range(w):
                    blocks[j, i] = self.memory.get((symbol, x + i, y + j), np.zeros(elems, np.float32))[:elems]

        def launch(self, name, nonblock):
            assert self.running
            self.launched.append(name)
            if EMULATE:
                EMULATE(self.memory, name)

        def stop(self):
            self.running = False
''')

CASES = {
    "gemv": ({"x": (1, 64)}, {"W": (32, 64), "b": (32,)}, {"y": (1, 32)}),
    "conv": ({"image": (1, 3, 8, 8)}, {"conv1.w": (4, 3, 3, 3), "conv1.b": (4,)}, {"p1": (1, 4, 4, 4)}),
    "eltwise": ({"x": (2, 50)}, {"bias": (50,)}, {"s": (2, 50)}),
    "summa": ({"A": (16, 12)}, {"B": (12, 8)}, {"C": (16, 8)}),
    "depthwise": ({"x": (1, 384, 16, 16)}, {"dw.w": (384, 1, 3, 3)}, {"y": (1, 384, 16, 16)}),
    "im2col": ({"x": (1, 8, 8, 8), "skip": (1, 6, 8, 8)}, {"conv2.w": (6, 8, 3, 3), "conv2.b": (6,)}, {"y": (1, 6, 8, 8)}),
    "mha": ({"q": (1, 6, 8), "k": (1, 5, 8), "v": (1, 5, 8), "mask": (1, 1, 6, 5)}, {}, {"o": (1, 6, 8)}),
    "gru": ({"X": (4, 2, 5), "h0": (1, 2, 3)}, {"W": (1, 9, 5), "R": (1, 9, 3), "B": (1, 18)},
            {"Y": (4, 1, 2, 3), "Y_h": (1, 2, 3)}),
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


# What pe_program.csl's op0 of the gemv golden does on its 4 x 2 PEs (16 x 16 tiles, one row):
# each PE seeds y (bias on the left column), runs @fmacs(y, y, w[:, j], x_j) for every x element
# of its column (x comes down from the top row), then the row's partial sums are added EAST and
# the right column holds the result. Written from the CSL, not from run.py.
GEMV_EMULATION = textwrap.dedent('''
    import numpy as np

    def emulate(mem, name):
        assert name == "op0"
        Mt, Nt, kx, ky = 16, 16, 4, 2
        for py in range(ky):
            partial = []
            for px in range(kx):
                w = mem[("op0_w", px, py)].reshape(Nt, Mt)  # column-major: column j at j * Mt
                x = mem[("op0_x", px, 0)]                   # from the top row of the column
                y = mem[("op0_b", 0, py)].copy() if px == 0 else np.zeros(Mt, np.float32)
                for j in range(Nt):
                    y += w[j] * x[j]
                partial.append(y)
            mem[("op0_y", kx - 1, py)] = np.sum(partial, axis=0).astype(np.float32)
''')


def test_gemv_run_py_and_the_pe_programs_data_layout_compute_x_wt_plus_b(tmp_path):
    sdk = tmp_path / "cerebras" / "sdk" / "runtime"
    sdk.mkdir(parents=True)
    for d in (tmp_path / "cerebras", tmp_path / "cerebras" / "sdk", sdk):
        (d / "__init__.py").write_text("")
    (sdk / "sdkruntimepybind.py").write_text(FAKE_SDK.replace("EMULATE = None", GEMV_EMULATION + "\nEMULATE = emulate"))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 64)).astype(np.float32)
    W = rng.standard_normal((32, 64)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x)
    (tmp_path / "weights").mkdir()
    np.save(tmp_path / "weights" / "W.npy", W)
    np.save(tmp_path / "weights" / "b.npy", b)
    r = subprocess.run([sys.executable, os.path.join(GOLDEN, "gemv", "run.py"), "--inputs", str(tmp_path / "inputs.npz"),
                        "--weights", str(tmp_path / "weights"), "--outputs", str(tmp_path / "out.npz")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "out.npz")["y"]
    np.testing.assert_allclose(y, x @ W.T + b, rtol=1e-5, atol=1e-5)


# What op0 of the depthwise golden does on each of its 8 x 8 PEs (2 channel blocks of 4 x 8 PEs,
# 192 channels, 2 x 4 output tile, 4 x 6 input tile with halo): per channel the bias, one
# @fmacs per tap and output row over a strided input row, then + residual and Clip(0, 6).
DEPTHWISE_EMULATION = textwrap.dedent('''
    import numpy as np

    def emulate(mem, name):
        assert name == "op0"
        C, th, tw, ih, iw = 192, 2, 4, 4, 6
        for py in range(8):
            for px in range(8):
                x = mem[("op0_x", px, py)].reshape(C, ih, iw)
                w = mem[("op0_w", px, py)].reshape(C, 3, 3)
                b = mem[("op0_b", px, py)]
                y = np.empty((C, th, tw), np.float32)
                for co in range(C):
                    y[co] = b[co]
                    for kh in range(3):
                        for kw in range(3):
                            for r in range(th):
                                y[co, r] += x[co, r + kh, kw:kw + tw] * w[co, kh, kw]
                y += mem[("op0_res", px, py)].reshape(C, th, tw)
                mem[("op0_y", px, py)] = np.clip(y, 0.0, 6.0).ravel()
''')


def test_depthwise_run_py_and_the_pe_programs_tiles_compute_the_convolution(tmp_path):
    sdk = tmp_path / "cerebras" / "sdk" / "runtime"
    sdk.mkdir(parents=True)
    for d in (tmp_path / "cerebras", tmp_path / "cerebras" / "sdk", sdk):
        (d / "__init__.py").write_text("")
    (sdk / "sdkruntimepybind.py").write_text(FAKE_SDK.replace("EMULATE = None", DEPTHWISE_EMULATION + "\nEMULATE = emulate"))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 384, 16, 16)).astype(np.float32)
    w = rng.standard_normal((384, 1, 3, 3)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x)
    (tmp_path / "weights").mkdir()
    np.save(tmp_path / "weights" / "dw.w.npy", w)
    r = subprocess.run([sys.executable, os.path.join(GOLDEN, "depthwise", "run.py"), "--inputs", str(tmp_path / "inputs.npz"),
                        "--weights", str(tmp_path / "weights"), "--outputs", str(tmp_path / "out.npz")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((384, 16, 16), np.float32)
    for kh in range(3):
        for kw in range(3):
            conv += xp[:, kh:kh + 16, kw:kw + 16] * w[:, 0, kh, kw][:, None, None]
    expected = np.clip(conv + x[0], 0.0, 6.0)[None]
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["y"], expected, rtol=1e-5, atol=1e-5)


# op0 of the im2col golden: 2 replicas (columns 0-1 and 2-3) of a 2 x 2 GEMV block, W tiles of
# 3 x 36, 11 rows per launch; y seeded with the bias on each block's left column, @fmacs per x
# element from the block's top row, the row's partials summed EAST into the block's right column,
# then + residual and Relu there.
IM2COL_EMULATION = textwrap.dedent('''
    import numpy as np

    def emulate(mem, name):
        assert name == "op0"
        kx, ky, mx, Mt, Nt, CR = 2, 2, 2, 3, 36, 11
        for i in range(mx):
            for py in range(ky):
                total = np.zeros((CR, Mt), np.float32)
                for px in range(kx):
                    X = i * kx + px
                    w = mem[("op0_w", X, py)].reshape(Nt, Mt)
                    x = mem[("op0_x", X, 0)].reshape(CR, Nt)
                    y = np.tile(mem[("op0_b", X, py)], (CR, 1)) if px == 0 else np.zeros((CR, Mt), np.float32)
                    for r in range(CR):
                        for j in range(Nt):
                            y[r] += w[j] * x[r, j]
                    total += y
                right = i * kx + kx - 1
                total += mem[("op0_res", right, py)].reshape(CR, Mt)
                mem[("op0_y", right, py)] = np.maximum(total, 0.0).ravel()
''')


def test_im2col_replicas_chunks_run_py_and_the_pe_programs_layout_compute_the_convolution(tmp_path):
    sdk = tmp_path / "cerebras" / "sdk" / "runtime"
    sdk.mkdir(parents=True)
    for d in (tmp_path / "cerebras", tmp_path / "cerebras" / "sdk", sdk):
        (d / "__init__.py").write_text("")
    (sdk / "sdkruntimepybind.py").write_text(FAKE_SDK.replace("EMULATE = None", IM2COL_EMULATION + "\nEMULATE = emulate"))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
    skip = rng.standard_normal((1, 6, 8, 8)).astype(np.float32)
    w = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x, skip=skip)
    (tmp_path / "weights").mkdir()
    np.save(tmp_path / "weights" / "conv2.w.npy", w)
    np.save(tmp_path / "weights" / "conv2.b.npy", b)
    r = subprocess.run([sys.executable, os.path.join(GOLDEN, "im2col", "run.py"), "--inputs", str(tmp_path / "inputs.npz"),
                        "--weights", str(tmp_path / "weights"), "--outputs", str(tmp_path / "out.npz")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((6, 8, 8), np.float32)
    for kh in range(3):
        for kw in range(3):
            conv += np.einsum("oc,chw->ohw", w[:, :, kh, kw], xp[:, kh:kh + 8, kw:kw + 8])
    expected = np.maximum(conv + b[:, None, None] + skip[0], 0.0)[None]
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["y"], expected, rtol=1e-4, atol=1e-4)


def run_with_emulation(case, emulation, inputs, weights, tmp_path):
    sdk = tmp_path / "cerebras" / "sdk" / "runtime"
    sdk.mkdir(parents=True)
    for d in (tmp_path / "cerebras", tmp_path / "cerebras" / "sdk", sdk):
        (d / "__init__.py").write_text("")
    (sdk / "sdkruntimepybind.py").write_text(FAKE_SDK.replace("EMULATE = None", emulation + "\nEMULATE = emulate"))
    np.savez(tmp_path / "inputs.npz", **inputs)
    (tmp_path / "weights").mkdir()
    for k, v in weights.items():
        np.save(tmp_path / "weights" / f"{k}.npy", v)
    r = subprocess.run([sys.executable, os.path.join(GOLDEN, case, "run.py"), "--inputs", str(tmp_path / "inputs.npz"),
                        "--weights", str(tmp_path / "weights"), "--outputs", str(tmp_path / "out.npz")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    return np.load(tmp_path / "out.npz")


# SUMMA on 2 x 2 PEs: tiles A 8 x 6, B 6 x 4, C 8 x 4, column-major; in step s PE (px, py) uses
# the A tile of PE (s, py) and the B tile of PE (px, s); C starts from the bias (zeros here).
SUMMA_EMULATION = textwrap.dedent('''
    import numpy as np

    def emulate(mem, name):
        assert name == "op0"
        P, Mt, Kt, Nt = 2, 8, 6, 4
        for py in range(P):
            for px in range(P):
                C = np.tile(mem[("op0_b", px, py)], (Mt, 1))  # C[i, j] = b[j]
                for s in range(P):
                    A = mem[("op0_a", s, py)].reshape(Kt, Mt).T
                    B = mem[("op0_w", px, s)].reshape(Nt, Kt).T
                    C += A @ B
                mem[("op0_y", px, py)] = C.T.ravel()  # column-major
''')


def test_summa_run_py_and_the_pe_programs_tiles_compute_a_times_b(tmp_path):
    rng = np.random.default_rng(4)
    A = rng.standard_normal((16, 12)).astype(np.float32)
    B = rng.standard_normal((12, 8)).astype(np.float32)
    out = run_with_emulation("summa", SUMMA_EMULATION, {"A": A}, {"B": B}, tmp_path)
    np.testing.assert_allclose(out["C"], A @ B, rtol=1e-5, atol=1e-5)


# The elementwise chain on 4 PEs of 25 elements: op0 y = a + b, op1 reads op0's y in place,
# op2 reads op1's y in place (names from pe_program.csl).
ELTWISE_EMULATION = textwrap.dedent('''
    import numpy as np

    def emulate(mem, name):
        for x in range(4):
            if name == "op0":
                mem[("op0_y", x, 0)] = mem[("op0_a", x, 0)] + mem[("op0_b", x, 0)]
            elif name == "op1":
                mem[("op1_y", x, 0)] = np.maximum(mem[("op0_y", x, 0)], 0.0)
            else:
                mem[("op2_y", x, 0)] = 1.0 / (1.0 + np.exp(-mem[("op1_y", x, 0)]))
''')


def test_eltwise_chain_run_py_and_the_pe_programs_compute_sigmoid_relu_add(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 50)).astype(np.float32)
    bias = rng.standard_normal(50).astype(np.float32)
    out = run_with_emulation("eltwise", ELTWISE_EMULATION, {"x": x}, {"bias": bias}, tmp_path)
    np.testing.assert_allclose(out["s"], 1 / (1 + np.exp(-np.maximum(x + bias, 0))), rtol=1e-6)


# op0 of the mha golden on 3 x 2 PEs (one head per row, 2 keys per column, 4 query rows per
# launch), stage by stage as pe_program.csl runs it: column 0's query rows broadcast along the
# row; per PE the scores q . K^T column by column, * 0.5, + key bias + mask, and their maxima;
# the maxima gathered on the last column and sent back; per PE exp(s - max), its sum and P V;
# the sums added on the last column, which divides o by the sum.
MHA_EMULATION = textwrap.dedent('''
    import numpy as np

    def emulate(mem, name):
        assert name == "op0"
        kx, ky, Ht, St, dk, dv, CR = 3, 2, 1, 2, 4, 4, 4
        for py in range(ky):
            q = mem[("op0_q", 0, py)].reshape(CR, Ht, dk)
            scores, maxima = [], []
            for px in range(kx):
                kt = mem[("op0_kt", px, py)].reshape(Ht, dk, St)
                s = np.zeros((CR, Ht, St), np.float32)
                for r in range(CR):
                    for h in range(Ht):
                        for d in range(dk):
                            s[r, h] += kt[h, d] * q[r, h, d]
                s = s * np.float32(0.5) + mem[("op0_kb", px, py)] + mem[("op0_mask", px, py)].reshape(CR, Ht, St)
                scores.append(s)
                maxima.append(s.max(axis=2))
            m = np.max(maxima, axis=0)
            total = np.zeros((CR, Ht, dv + 1), np.float32)
            for px in range(kx):
                v = mem[("op0_v", px, py)].reshape(Ht, St, dv)
                p = np.exp(scores[px] - m[..., None])
                total[..., 0] += p.sum(axis=2)
                total[..., 1:] += np.einsum("rht,htd->rhd", p, v)
            total[..., 1:] /= total[..., :1]
            mem[("op0_y", kx - 1, py)] = total.ravel()
''')


def test_mha_run_py_and_the_pe_programs_tiles_compute_attention(tmp_path):
    rng = np.random.default_rng(6)
    q = rng.standard_normal((1, 6, 8)).astype(np.float32)
    k = rng.standard_normal((1, 5, 8)).astype(np.float32)
    v = rng.standard_normal((1, 5, 8)).astype(np.float32)
    mask = np.where(rng.random((1, 1, 6, 5)) < 0.2, -1e4, 0.0).astype(np.float32)
    out = run_with_emulation("mha", MHA_EMULATION, {"q": q, "k": k, "v": v, "mask": mask}, {}, tmp_path)
    expected = np.zeros((1, 6, 8), np.float32)
    for h in range(2):
        c = slice(4 * h, 4 * h + 4)
        s = 0.5 * q[0, :, c] @ k[0, :, c].T + mask[0, 0]
        p = np.exp(s - s.max(axis=1, keepdims=True))
        expected[0, :, c] = (p / p.sum(axis=1, keepdims=True)) @ v[0, :, c]
    np.testing.assert_allclose(out["o"], expected, rtol=1e-5, atol=1e-5)


# op0 of the gru golden on 2 x 2 PEs (2 hidden units per row, 3 inputs and 2 hidden values per
# column), as pe_program.csl runs it, all 4 steps in one launch: per PE the GEMV tiles of its
# columns ([W x_t | R h] per batch row), the row's partials summed (reduce_fadds) and sent back,
# the gates (linear_before_reset) on every PE of the row, the new h gathered down each column
# and broadcast; column 0 keeps Y.
GRU_EMULATION = textwrap.dedent('''
    import numpy as np

    def sig(v):
        return 1.0 / (1.0 + np.exp(-v))

    def emulate(mem, name):
        assert name == "op0"
        T, B, kx, ky, Ht, It, Hk, Hh = 4, 2, 2, 2, 2, 3, 2, 4
        G3 = 3 * Ht
        pes = [(px, py) for py in range(ky) for px in range(kx)]
        h = {pe: mem[("op0_h",) + pe].reshape(B, Hh).copy() for pe in pes}
        y = {py: np.zeros((T, B, Ht), np.float32) for py in range(ky)}
        for t in range(T):
            hn = {}
            for py in range(ky):
                red = np.zeros((B, 2 * G3), np.float32)
                for px in range(kx):
                    w = mem[("op0_w", px, py)].reshape(It, G3)
                    r = mem[("op0_r", px, py)].reshape(Hk, G3)
                    x = mem[("op0_x", px, py)].reshape(T, B, It)
                    for b in range(B):
                        for j in range(It):
                            red[b, :G3] += w[j] * x[t, b, j]
                        for j in range(Hk):
                            red[b, G3:] += r[j] * h[(px, py)][b, px * Hk + j]
                for px in range(kx):
                    bi = mem[("op0_b", px, py)]
                    z = sig(red[:, :Ht] + bi[:Ht] + red[:, G3:G3 + Ht] + bi[G3:G3 + Ht])
                    rr = sig(red[:, Ht:2 * Ht] + bi[Ht:2 * Ht] + red[:, G3 + Ht:G3 + 2 * Ht] + bi[G3 + Ht:G3 + 2 * Ht])
                    a = red[:, 2 * Ht:G3] + bi[2 * Ht:G3] + rr * (red[:, G3 + 2 * Ht:] + bi[G3 + 2 * Ht:])
                    hn[(px, py)] = (1 - z) * np.tanh(a) + z * h[(px, py)][:, py * Ht:(py + 1) * Ht]
                y[py][t] = hn[(0, py)]
            for px in range(kx):
                gathered = np.concatenate([hn[(px, q)] for q in range(ky)], axis=1)
                for py in range(ky):
                    h[(px, py)][:, :ky * Ht] = gathered
        for py in range(ky):
            mem[("op0_y", 0, py)] = y[py].ravel()
        for pe in pes:
            mem[("op0_h",) + pe] = h[pe].ravel()
''')


def test_gru_run_py_and_the_pe_programs_tiles_compute_the_recurrence(tmp_path):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((4, 2, 5)).astype(np.float32)
    h0 = rng.standard_normal((1, 2, 3)).astype(np.float32)
    W = rng.standard_normal((1, 9, 5)).astype(np.float32)
    R = rng.standard_normal((1, 9, 3)).astype(np.float32)
    Bias = rng.standard_normal((1, 18)).astype(np.float32)
    out = run_with_emulation("gru", GRU_EMULATION, {"X": X, "h0": h0}, {"W": W, "R": R, "B": Bias}, tmp_path)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    Wz, Wr, Wn = np.split(W[0], 3)
    Rz, Rr, Rn = np.split(R[0], 3)
    wbz, wbr, wbn, rbz, rbr, rbn = np.split(Bias[0], 6)
    h = h0[0]
    Y = np.zeros((4, 1, 2, 3), np.float32)
    for t in range(4):  # ONNX GRU, linear_before_reset = 1
        z = sig(X[t] @ Wz.T + wbz + h @ Rz.T + rbz)
        r = sig(X[t] @ Wr.T + wbr + h @ Rr.T + rbr)
        n = np.tanh(X[t] @ Wn.T + wbn + r * (h @ Rn.T + rbn))
        h = (1 - z) * n + z * h
        Y[t, 0] = h
    np.testing.assert_allclose(out["Y"], Y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["Y_h"], h[None], rtol=1e-5, atol=1e-5)
