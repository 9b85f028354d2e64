"""Reduced precision (pyflame_rt.quantization): static/dynamic/QAT int8 and fp16/bf16 weights,
compared with the fp32 model and, for the QDQ models we write, with ONNX Runtime."""

import os
import subprocess

import numpy as np
import onnx
import pytest

import pyflame_rt as rt
from pyflame_rt.quantization import QuantConfig

import ort_reference  # noqa: E402 - tests/tools is on sys.path (conftest.py)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")


def _small_cnn(path):
    """Conv-ReLU-Conv-ReLU6 + residual Add, MaxPool, Flatten, Gemm-ReLU, Gemm (random weights)."""
    import torch
    from torch import nn
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 16, 3, padding=1)
            self.c2 = nn.Conv2d(16, 16, 3, padding=1)
            self.c3 = nn.Conv2d(16, 16, 1)
            self.fc1 = nn.Linear(16 * 8 * 8, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            a = torch.relu(self.c1(x))
            b = nn.functional.relu6(self.c2(a))
            c = torch.relu(self.c3(b) + a)
            p = nn.functional.max_pool2d(c, 2)
            return self.fc2(torch.relu(self.fc1(p.flatten(1))))

    torch.onnx.export(Net().eval(), (torch.randn(1, 3, 16, 16),), str(path), input_names=["x"],
                      output_names=["y"], opset_version=13)
    return str(path)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return _small_cnn(tmp_path_factory.mktemp("q") / "cnn.onnx")


def _feeds(n, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(n)]


def _cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_static_int8_close_to_fp32(cnn, method):
    cfg = QuantConfig(mode="static", dtype="int8", calibration_data=_feeds(16), method=method)
    sess = rt.InferenceSession(cnn, quantization=cfg)
    ref = rt.InferenceSession(cnn)
    cos = [_cosine(sess.run(None, f)[0], ref.run(None, f)[0]) for f in _feeds(8, seed=1)]
    print(method, min(cos))
    # Entropy (KL) clipping trades the outliers for resolution; this tiny random net's outputs
    # hinge on a few outliers, so it is the least accurate method here (not on the bench CNNs).
    assert min(cos) >= (0.97 if method == "entropy" else 0.99)
    report = sess.quantization_report()
    assert {n["op_type"] for n in report["nodes"]} == {"Conv", "Gemm"}
    assert len(report["nodes"]) == 5
    assert all(n["weight_scales"] > 1 for n in report["nodes"])  # per channel
    assert report["outputs"]["y"]["cosine"] >= (0.97 if method == "entropy" else 0.99)
    assert report["activations"]["x"]["scale"] > 0


def test_static_int8_qdq_model_matches_onnxruntime(cnn, tmp_path):
    from pyflame_rt import quantization as q
    cfg = QuantConfig(mode="static", calibration_data=_feeds(8))
    model, report = q.quantize(cnn, cfg)
    path = str(tmp_path / "cnn.int8.onnx")
    onnx.save(model, path)
    onnx.checker.check_model(path)
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops and "Relu" in ops  # Relu after Add stays
    assert sum(t.data_type == onnx.TensorProto.INT8 for t in model.graph.initializer) >= 5
    feed = _feeds(1, seed=3)[0]
    ours = rt.InferenceSession(path, quantization=QuantConfig(mode="qat")).run(None, feed)[0]
    ort = ort_reference.run_ort(path, feed)["y"]
    fp32 = rt.InferenceSession(cnn).run(None, feed)[0]
    # Same quantized model: agreement up to a few rounding flips of uint8 activations.
    assert np.abs(ours - ort).max() <= 0.05 * np.abs(ort).max()
    assert _cosine(ort, fp32) >= 0.99


def test_dynamic_int8_matmul(cnn):
    cfg = QuantConfig(mode="dynamic", dtype="int8")
    sess = rt.InferenceSession(cnn, quantization=cfg)
    ref = rt.InferenceSession(cnn)
    f = _feeds(1, seed=4)[0]
    assert _cosine(sess.run(None, f)[0], ref.run(None, f)[0]) >= 0.999
    assert sess.quantization_report()["outputs"] == {}  # no feeds, no measured error
    assert [n["op_type"] for n in sess.quantization_report()["nodes"]] == ["Gemm", "Gemm"]


@pytest.mark.parametrize("dtype", ["fp16", "bfloat16"])
def test_half_weights(cnn, dtype):
    cfg = QuantConfig(mode="dynamic", dtype=dtype, calibration_data=_feeds(2))
    sess = rt.InferenceSession(cnn, quantization=cfg)
    ref = rt.InferenceSession(cnn)
    f = _feeds(1, seed=5)[0]
    out = sess.run(None, f)[0]
    assert out.dtype == np.float32
    assert _cosine(out, ref.run(None, f)[0]) >= 0.999
    report = sess.quantization_report()
    stored = sum(n["bytes_stored"] for n in report["nodes"])
    full = sum(n["bytes_fp32"] for n in report["nodes"])
    assert stored * 2 == full and full > 0
    assert report["outputs"]["y"]["cosine"] >= 0.999


def test_exclude_keeps_node_fp32(cnn):
    names = [n.name for n in onnx.load(cnn).graph.node if n.op_type == "Gemm"]
    cfg = QuantConfig(mode="static", calibration_data=_feeds(4), exclude=["Conv", names[0]])
    sess = rt.InferenceSession(cnn, quantization=cfg)
    assert [n["name"] for n in sess.quantization_report()["nodes"]] == names[1:]


def test_from_onnx_accepts_quantization(cnn):
    sess = rt.InferenceSession.from_onnx(cnn, quantization=QuantConfig(mode="dynamic"))
    assert sess.quantization_report()["mode"] == "dynamic"
    assert rt.InferenceSession(cnn).quantization_report() is None


def test_bad_config_names_the_value():
    with pytest.raises(Exception, match="mode"):
        QuantConfig(mode="fancy")
    with pytest.raises(Exception, match="calibration_data"):
        QuantConfig(mode="static", dtype="int8")
    with pytest.raises(Exception, match="method"):
        QuantConfig(method="mse", calibration_data=_feeds(1))


def test_cli_quantize_writes_model_onnxruntime_runs(cnn, tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, f in enumerate(_feeds(4)):
        np.save(calib / f"{i}.npy", f["x"])
    out = tmp_path / "cnn.int8.onnx"
    r = subprocess.run([CLI, "quantize", cnn, "--calib", str(calib), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    feed = _feeds(1, seed=6)[0]
    ort = ort_reference.run_ort(str(out), feed)["y"]
    fp32 = rt.InferenceSession(cnn).run(None, feed)[0]
    assert _cosine(ort, fp32) >= 0.99


def test_qdq_convs_run_as_native_int8(cnn, tmp_path):
    """The QDQ groups around each Conv become QLinearConv on oneDNN's int8 kernel, and agree
    with the unfused QDQ graph (fp32 on dequantized values) up to a few uint8 rounding steps."""
    from pyflame_rt import quantization as q
    model, _ = q.quantize(cnn, QuantConfig(mode="static", calibration_data=_feeds(8)))
    path = str(tmp_path / "cnn.int8.onnx")
    onnx.save(model, path)
    sess = rt.InferenceSession(path)
    placement = sess.get_node_placement()
    int8 = [p for p in placement if p["op_type"] == "QLinearConv"]
    assert len(int8) == 3 and all(p["kernel"] == "native" for p in int8), placement
    assert not any(p["op_type"] == "Conv" for p in placement)
    opts = rt.SessionOptions()
    opts.graph_optimization_level = rt.GraphOptimizationLevel.ORT_DISABLE_ALL
    unfused = rt.InferenceSession(path, opts)
    assert not any(p["op_type"] == "QLinearConv" for p in unfused.get_node_placement())
    for f in _feeds(4, seed=9):
        a, b = sess.run(None, f)[0], unfused.run(None, f)[0]
        assert np.abs(a - b).max() <= 0.05 * np.abs(b).max()
        assert _cosine(a, b) >= 0.999


def test_quantizing_a_non_onnx_model_names_it(tmp_path):
    bad = tmp_path / "model.pfm"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(rt.InvalidArgument, match="expected an ONNX model"):
        rt.InferenceSession(str(bad), quantization=QuantConfig(mode="dynamic"))


def test_residual_add_relu_fuses_into_the_int8_convolution(tmp_path):
    """DQ(conv) + DQ(residual) -> Add -> Relu -> Q becomes one QLinearConvAdd (sum post-op),
    equal to the unfused QDQ graph and to ONNX Runtime up to uint8 rounding."""
    import torch
    from torch import nn
    from pyflame_rt import quantization as q
    torch.manual_seed(1)

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 8, 1)

        def forward(self, x):
            a = torch.relu(self.c1(x))
            return self.c3(torch.relu(self.c2(a) + a))

    src = str(tmp_path / "res.onnx")
    torch.onnx.export(Res().eval(), (torch.randn(1, 3, 16, 16),), src, input_names=["x"], output_names=["y"],
                      opset_version=13)
    model, _ = q.quantize(src, QuantConfig(mode="static", calibration_data=_feeds(8)))
    path = str(tmp_path / "res.int8.onnx")
    onnx.save(model, path)
    sess = rt.InferenceSession(path)
    fused = [p for p in sess.get_node_placement() if p["op_type"] == "QLinearConvAdd"]
    assert len(fused) == 1 and fused[0]["kernel"] == "native", sess.get_node_placement()
    assert not any(p["op_type"] == "Add" for p in sess.get_node_placement())
    opts = rt.SessionOptions()
    opts.graph_optimization_level = rt.GraphOptimizationLevel.ORT_DISABLE_ALL
    unfused = rt.InferenceSession(path, opts)
    fp32 = rt.InferenceSession(src)
    for f in _feeds(3, seed=11):
        a, b = sess.run(None, f)[0], unfused.run(None, f)[0]
        assert np.abs(a - b).max() <= 0.05 * np.abs(b).max()
        assert _cosine(a, fp32.run(None, f)[0]) >= 0.99
    f = _feeds(1, seed=12)[0]
    ort = ort_reference.run_ort(path, f)["y"]
    assert np.abs(sess.run(None, f)[0] - ort).max() <= 0.05 * np.abs(ort).max()


def _mlp(path):
    """Linear layers on a 3-D input (torch writes MatMul + Add) and on a 2-D one (Gemm, Gemm
    with ReLU): the int8 matmul paths."""
    import torch
    from torch import nn
    torch.manual_seed(2)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2 = nn.Linear(32, 64), nn.Linear(64, 32)
            self.f1, self.f2 = nn.Linear(8 * 32, 48), nn.Linear(48, 10)

        def forward(self, x):
            h = self.l2(torch.relu(self.l1(x)))   # [1, 8, 32]: MatMul + Add
            return self.f2(torch.relu(self.f1(h.flatten(1))))  # Gemm

    torch.onnx.export(Mlp().eval(), (torch.randn(1, 8, 32),), str(path), input_names=["x"],
                      output_names=["y"], opset_version=13)
    return str(path)


def _mlp_feeds(n, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 8, 32)).astype(np.float32)} for _ in range(n)]


def test_qdq_matmuls_run_as_native_int8(tmp_path):
    """DQ -> MatMul/Gemm [-> Q] groups become QLinearMatMul / pyflame_rt.QMatMul on oneDNN's
    int8 matmul, agree with the unfused QDQ graph and ONNX Runtime up to uint8 rounding, and
    stay within cosine 0.99 of fp32."""
    from pyflame_rt import quantization as q
    src = _mlp(tmp_path / "mlp.onnx")
    model, report = q.quantize(src, QuantConfig(mode="static", calibration_data=_mlp_feeds(16)))
    assert sorted(n["op_type"] for n in report["nodes"]) == ["Gemm", "Gemm", "MatMul", "MatMul"]
    path = str(tmp_path / "mlp.int8.onnx")
    onnx.save(model, path)
    sess = rt.InferenceSession(path)
    placement = sess.get_node_placement()
    int8 = [p for p in placement if p["op_type"] in ("QLinearMatMul", "QMatMul")]
    assert len(int8) == 4 and all(p["kernel"] == "native" for p in int8), placement
    assert {p["op_type"] for p in int8} == {"QLinearMatMul", "QMatMul"}
    assert not any(p["op_type"] in ("MatMul", "Gemm") for p in placement), placement
    opts = rt.SessionOptions()
    opts.graph_optimization_level = rt.GraphOptimizationLevel.ORT_DISABLE_ALL
    unfused = rt.InferenceSession(path, opts)
    fp32 = rt.InferenceSession(src)
    for f in _mlp_feeds(8, seed=21):
        a, b = sess.run(None, f)[0], unfused.run(None, f)[0]
        assert np.abs(a - b).max() <= 0.05 * np.abs(b).max()
        assert _cosine(a, fp32.run(None, f)[0]) >= 0.99
    f = _mlp_feeds(1, seed=22)[0]
    ort = ort_reference.run_ort(path, f)["y"]
    assert np.abs(sess.run(None, f)[0] - ort).max() <= 0.05 * np.abs(ort).max()


def test_dynamic_int8_matmul_integer_runs_native(tmp_path):
    src = _mlp(tmp_path / "mlp.onnx")
    sess = rt.InferenceSession(src, quantization=QuantConfig(mode="dynamic"))
    placement = sess.get_node_placement()
    mmi = [p for p in placement if p["op_type"] == "MatMulInteger"]
    assert len(mmi) == 4, placement
    ref = rt.InferenceSession(src)
    for f in _mlp_feeds(4, seed=23):
        assert _cosine(sess.run(None, f)[0], ref.run(None, f)[0]) >= 0.999
    # Without VNNI the weights' 8 bits would saturate oneDNN's int8 gemm: the reference runs.
    if not os.environ.get("ONEDNN_MAX_CPU_ISA"):
        assert all(p["kernel"] == "native" for p in mmi), placement


def test_static_int8_transformer_encoder_close_to_fp32(tmp_path):
    """A whole (small) transformer encoder in int8: its projections and feed-forward matmuls
    run on the int8 kernel; the output stays within cosine 0.99 of fp32."""
    import torch
    from torch import nn
    from pyflame_rt import quantization as q
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
    src = str(tmp_path / "enc.onnx")
    torch.onnx.export(enc, (torch.randn(1, 16, 64),), src, input_names=["x"], output_names=["y"], opset_version=13)
    rng = np.random.default_rng(5)
    feeds = [{"x": rng.standard_normal((1, 16, 64)).astype(np.float32)} for _ in range(24)]
    model, report = q.quantize(src, QuantConfig(mode="static", calibration_data=feeds[:16]))
    path = str(tmp_path / "enc.int8.onnx")
    onnx.save(model, path)
    sess = rt.InferenceSession(path)
    # 4 per layer (in/out projections, feed-forward): torch passes the cloned layers' equal
    # weights on through Identity nodes, which the quantizer sees through.
    assert len(report["nodes"]) == 8
    int8 = [p for p in sess.get_node_placement() if p["op_type"] in ("QLinearMatMul", "QMatMul")]
    assert len(int8) == 8 and all(p["kernel"] == "native" for p in int8), sess.get_node_placement()
    fp32 = rt.InferenceSession(src)
    cos = [_cosine(sess.run(None, f)[0], fp32.run(None, f)[0]) for f in feeds[16:]]
    assert min(cos) >= 0.99, cos


def test_int8_plan_keeps_packed_int8_weights(cnn, tmp_path):
    """A shape-specialised plan of a QDQ model keeps its int8 convolutions' and matmuls'
    packed weights: the cached session (no import, no passes, no packing) gives the same bytes
    as the session that compiled it."""
    from pyflame_rt import quantization as q
    model, _ = q.quantize(cnn, QuantConfig(mode="static", calibration_data=_feeds(8)))
    path = str(tmp_path / "cnn.int8.onnx")
    onnx.save(model, path)
    co = rt.CompileOptions(cache_dir=tmp_path / "cache", input_shapes={"x": [1, 3, 16, 16]})
    first = rt.InferenceSession.from_onnx(path, compile_options=co)
    second = rt.InferenceSession.from_onnx(path, compile_options=co)
    assert (first.compiled_from_cache, second.compiled_from_cache) == (False, True)
    plan = list((tmp_path / "cache").glob("*.plan"))
    assert len(plan) == 1
    # The int8 blobs name the int8 kernels they were packed for (oneDNN's impl names).
    assert b"int8" in plan[0].read_bytes()
    int8 = [p for p in second.get_node_placement() if p["op_type"] in ("QLinearConv", "QMatMul")]
    assert len(int8) >= 3 and all(p["kernel"] == "native" for p in int8), int8
    for f in _feeds(3, seed=4):
        np.testing.assert_array_equal(second.run(None, f)[0], first.run(None, f)[0])
