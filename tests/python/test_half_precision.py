"""FP16/BF16 weights on the CPU device: the weights stay half in the compiled program (constant
folding keeps the quantizer's Cast, the CPU device absorbs it into the convolutions and
matmuls), bf16 runs on oneDNN's bf16 kernels where the CPU has bf16 math, f32 from half storage
elsewhere (ONEDNN_MAX_CPU_ISA=AVX2 stands for an AVX2-only host), nodes run native, and the
process holds about half the weight memory of fp32 after its first run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pyflame_rt as rt
from pyflame_rt.quantization import QuantConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DTYPES = ["fp16", "bfloat16"]
WEIGHT_OPS = {"Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm"}


def _cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


HOST_BF16 = "avx512_bf16" in _cpu_flags() or "amx_bf16" in _cpu_flags()


def _cnn(path):
    """Conv-ReLU, Conv-ReLU6, 1x1 Conv + residual, MaxPool, Flatten, Gemm-ReLU, Gemm."""
    import torch
    from torch import nn
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 32, 3, padding=1)
            self.c2 = nn.Conv2d(32, 32, 3, padding=1)
            self.c3 = nn.Conv2d(32, 32, 1)
            self.fc1 = nn.Linear(32 * 8 * 8, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            a = torch.relu(self.c1(x))
            b = nn.functional.relu6(self.c2(a))
            c = torch.relu(self.c3(b) + a)
            p = nn.functional.max_pool2d(c, 2)
            return self.fc2(torch.relu(self.fc1(p.flatten(1))))

    torch.onnx.export(Net().eval(), (torch.randn(1, 3, 16, 16),), str(path), input_names=["x"],
                      output_names=["y"], opset_version=13)
    return str(path), (1, 3, 16, 16)


def _mlp(path):
    """Token MLP on [B, T, 64]: MatMul + Add (-> FusedMatMul), GELU-free ReLU, second layer."""
    import torch
    from torch import nn
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 16))
    torch.onnx.export(net.eval(), (torch.randn(2, 8, 64),), str(path), input_names=["x"], output_names=["y"],
                      opset_version=13)
    return str(path), (2, 8, 64)


@pytest.fixture(scope="module", params=["cnn", "mlp"])
def model(request, tmp_path_factory):
    build = _cnn if request.param == "cnn" else _mlp
    return build(tmp_path_factory.mktemp("half") / f"{request.param}.onnx")


def _feeds(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


def _cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _check(path, shape, dtype):
    """Everything the tests assert, as data (also run in a subprocess under an ISA cap)."""
    ref = rt.InferenceSession(path)
    sess = rt.InferenceSession(path, quantization=QuantConfig(mode="dynamic", dtype=dtype))
    cos, rel = [], []
    for f in _feeds(shape, 8, seed=3):
        r, o = ref.run(None, f)[0], sess.run(None, f)[0]
        assert o.dtype == np.float32
        cos.append(_cosine(r, o))
        rel.append(float(np.abs(r - o).max() / np.abs(r).max()))
    kernels = sess.get_node_placement()
    fp32_weights = ref.device_report()["partitions"][0]["weights"]
    return {"cosine": min(cos), "relative_error": max(rel),
            "weights": sess.quantization_report()["weights_in_memory"], "fp32_weights": fp32_weights,
            "weight_nodes": {k["node"]: k["kernel"] for k in kernels if k["op_type"] in WEIGHT_OPS},
            "casts": [k["node"] for k in kernels if k["op_type"] == "Cast"],
            "fallback": sess.get_fallback_nodes()}


def _assert_result(res, dtype, half_compute):
    name = "float16" if dtype == "fp16" else "bfloat16"
    # bf16 activations on the bf16 kernels round each layer's input to 8 bits of mantissa.
    assert res["cosine"] >= 0.999, res
    assert res["relative_error"] <= (0.05 if half_compute == "bf16" else 0.01), res
    w = res["weights"]
    # Every weight of a convolution or matmul is held half: half the bytes of the fp32 program's
    # weights; biases stay f32 (constant folding takes their Cast: they are small).
    assert w["half_weight_nodes"][name] == len(res["weight_nodes"]) > 0, res
    assert set(w["initializer_bytes_by_dtype"]) == {"float32", name}, res
    fp32_total = res["fp32_weights"]["initializer_bytes"]
    f32_left = w["initializer_bytes_by_dtype"]["float32"]
    assert w["initializer_bytes_by_dtype"][name] * 2 + f32_left == fp32_total, res
    assert w["initializer_bytes"] < 0.52 * fp32_total, res
    # Native kernels for every convolution and matmul, no Cast left to run, nothing falls back.
    assert set(res["weight_nodes"].values()) == {"native"}, res
    assert res["casts"] == [] and res["fallback"] == [], res
    assert w["half_compute"][name] == half_compute, res
    # Packed weights are half too: bf16 for the bf16 kernels, half copies expanded per run for
    # the f32 ones (half_weights.h: HalfPacked).
    assert w["packed_weights_halved"] is True, res
    if half_compute != "bf16":
        assert any("expanded to f32" in n for n in w["notes"]), res


@pytest.mark.parametrize("dtype", DTYPES)
def test_half_weights_stay_half_and_run_native(model, dtype):
    path, shape = model
    res = _check(path, shape, dtype)
    half_compute = "bf16" if dtype == "bfloat16" and HOST_BF16 else "f32"
    _assert_result(res, dtype, half_compute)


def _run_capped(path, shape, dtype, env_extra):
    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import test_half_precision as t; print(json.dumps(t._check({path!r}, {tuple(shape)!r}, {dtype!r})))")
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stdout


@pytest.mark.parametrize("dtype", DTYPES)
def test_avx2_capped_path_computes_f32_from_half_storage(model, dtype):
    path, shape = model
    res, _ = _run_capped(path, shape, dtype, {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    _assert_result(res, dtype, "f32")


@pytest.mark.skipif(not HOST_BF16, reason="the CPU has no bf16 math (avx512_bf16/amx_bf16)")
def test_bf16_runs_on_onednn_bf16_kernels(model):
    path, shape = model
    _, stdout = _run_capped(path, shape, "bfloat16", {"ONEDNN_VERBOSE": "1"})
    execs = [line for line in stdout.splitlines() if line.startswith("onednn_verbose,exec,cpu,")]
    weighted = [line for line in execs if ",convolution," in line or ",matmul," in line]
    # The bf16 session's convolutions/matmuls: bf16 source and weights, f32 destination.
    bf16 = [line for line in weighted if "src_bf16" in line and "wei_bf16" in line and "dst_f32" in line]
    assert bf16, "\n".join(weighted[:20])
    assert not any(line.split(",")[4].startswith("ref") for line in bf16), "\n".join(bf16)
    if path.endswith("cnn.onnx"):
        # The 1x1 32->32 convolution (32 multiply-adds per input element, under 128) computes
        # in f32 from its bf16 weights; the 3x3 ones (288) in bf16 (conv_op.cpp: kBf16MinMacs).
        convs = [line for line in weighted if ",convolution," in line]
        one_by_one = [line for line in convs if "kh1" in line and "ic32" in line]
        three = [line for line in convs if "kh3" in line and "ic32" in line]
        # (The fp32 session of the same process logs its f32 convolutions too.)
        assert one_by_one and not any("src_bf16" in line for line in one_by_one), "\n".join(convs)
        assert any("src_bf16" in line for line in three), "\n".join(convs)


_RSS_PROBE = """
import json, sys
import numpy as np
import pyflame_rt as rt
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
path = sys.argv[1]
feed = {'x': np.ones((1, 256, 16, 16), np.float32)}
base = rss()
o = rt.SessionOptions(); o.intra_op_num_threads = 1
s = rt.InferenceSession(path, o)
s.run(None, feed)
print(json.dumps({'rss': rss() - base}))
"""


def _big_model(path, wide_layers):
    """Two Conv 3x3 256->256 (Winograd shapes), Conv 1x1 256->1024, `wide_layers` 1x1
    1024->1024 (4 MiB of fp32 weights each), 1x1 1024->256, on a small input."""
    import torch
    from torch import nn
    torch.manual_seed(2)
    layers = [nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
              nn.Conv2d(256, 1024, 1), nn.ReLU()]
    for _ in range(wide_layers):
        layers += [nn.Conv2d(1024, 1024, 1), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Conv2d(1024, 256, 1))
    torch.onnx.export(net.eval(), (torch.randn(1, 256, 16, 16),), str(path), input_names=["x"], output_names=["y"],
                      opset_version=13)
    return str(path)


@pytest.mark.parametrize("dtype,cap", [("fp16", None), ("fp16", "AVX2"), ("bfloat16", "AVX2"), ("bfloat16", None)])
def test_weights_in_memory_are_halved_after_the_first_run(tmp_path, dtype, cap):
    """What a layer's weights cost in a process after its first run (stored + packed): RSS
    growth from before the session to after the first run, for a model with 2 and with 6 wide
    layers; the difference is four layers' weights (16 MiB of fp32), the rest (activations,
    kernels, the one-layer f32 scratch, the process's own growth) cancels. Half weights cost
    at most 0.6x what fp32 ones do (same ISA cap for both). The half models are the quantizer's,
    saved (a session given quantization= also keeps the fp32 model)."""
    import onnx
    from pyflame_rt import quantization as q
    env = dict(os.environ)
    if cap:
        env["ONEDNN_MAX_CPU_ISA"] = cap
    grown = {}
    for wide in (2, 6):
        fp32 = _big_model(tmp_path / f"big{wide}.onnx", wide)
        model, _ = q.quantize(fp32, QuantConfig(mode="dynamic", dtype=dtype))
        half = str(tmp_path / f"big{wide}.{dtype}.onnx")
        onnx.save(model, half)
        for d, path in (("fp32", fp32), (dtype, half)):
            out = subprocess.run([sys.executable, "-c", _RSS_PROBE, path], env=env, capture_output=True, text=True,
                                 timeout=300)
            assert out.returncode == 0, out.stderr[-3000:]
            grown[(d, wide)] = json.loads(out.stdout.strip().splitlines()[-1])["rss"]
    per_layers = {d: grown[(d, 6)] - grown[(d, 2)] for d in ("fp32", dtype)}
    four_layers = 4 * 1024 * 1024 * 4
    assert per_layers["fp32"] > 1.5 * four_layers, grown  # stored + packed: the probe sees them
    assert per_layers[dtype] < 0.6 * per_layers["fp32"], (per_layers, grown)
