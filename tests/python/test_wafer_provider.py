"""The wafer device through the ONNX-Runtime-style providers list: ResNet-50, MobileNetV2, the
transformer encoder and the GRU run with every node on the (simulated) wafer, and their outputs
equal the CPU device's (normalised L2 error <= 1e-6). See docs/wse.md."""

import json
import os
import re
import subprocess

import numpy as np
import pytest

import pyflame_rt as rt

import export_models  # noqa: E402 - tests/tools is put on sys.path by conftest.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_DIR = os.path.join(REPO, "build", "models")
CEREBRAS = "CerebrasExecutionProvider"


@pytest.fixture(scope="module")
def models():
    os.makedirs(MODEL_DIR, exist_ok=True)
    export_models.export(MODEL_DIR, ["resnet50", "mobilenet_v2", "encoder", "gru"])
    return MODEL_DIR


def feed_for(sess, shape):
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    feed = {sess.get_inputs()[0].name: x}
    for extra in sess.get_inputs()[1:]:
        feed[extra.name] = np.random.default_rng(5).standard_normal(extra.shape).astype(np.float32)
    return feed


@pytest.mark.parametrize("name,shape,fabric", [
    ("resnet50", (1, 3, 224, 224), "192x192"),
    ("mobilenet_v2", (1, 3, 224, 224), "128x128"),
    ("encoder", (1, 128, 256), "128x128"),
    ("gru", (1, 50, 64), "64x64"),
])
def test_model_runs_on_the_wafer_like_the_cpu(models, name, shape, fabric):
    path = os.path.join(models, f"{name}.onnx")
    wafer = rt.InferenceSession(path, providers=[(CEREBRAS, {"fabric": fabric}), "CPUExecutionProvider"])
    cpu = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert wafer.get_providers() == [CEREBRAS, "CPUExecutionProvider"]
    feed = feed_for(cpu, shape)
    ours = wafer.run(None, feed)
    ref = cpu.run(None, feed)
    for out, value, expected in zip(cpu.get_outputs(), ours, ref):
        err = np.linalg.norm(value.astype(np.float64) - expected) / max(np.linalg.norm(expected), 1e-30)
        assert err <= 1e-6, f"{name}/{out.name}: normalised error {err:.2e}"
    placement = wafer.get_node_placement()
    off_wafer = [p for p in placement if p["device"] != "wse3"]
    assert not off_wafer, f"{name}: nodes left the wafer: {off_wafer[:5]}"
    assert wafer.get_devices_used() == ["wse3"]
    report = wafer.device_report()
    for key in ("device", "partitions", "pes_used", "utilisation", "est_latency_us", "est_throughput_per_s",
                "host_io_us"):
        assert key in report, key
    for part in report["partitions"]:
        for key in ("pes", "rect", "sram_bytes_max", "sram_bytes_mean", "colors", "est_cycles"):
            assert key in part, key
        assert part["sram_bytes_max"] <= 48 * 1024


def test_unsupported_nodes_fall_to_the_cpu_and_are_reported(two_output_model):
    # int64 arithmetic: the wafer runs float32 only, so every node goes to the CPU, and says why.
    sess = rt.InferenceSession(two_output_model, providers=[CEREBRAS, "CPUExecutionProvider"])
    a = np.array([1, 2, 3], np.int64)
    prod, total = sess.run(["prod", "sum"], {"a": a, "b": a})
    np.testing.assert_array_equal(prod, a * a)
    assert sess.get_devices_used() == ["cpu"]
    declined = [f for f in sess.get_fallback_nodes() if "not on wse3" in f]
    assert len(declined) == 2 and all("int64" in f for f in declined), declined


def test_device_option_selects_the_generation(add_relu_model):
    sess = rt.InferenceSession(add_relu_model, rt.SessionOptions(device="wse2"))
    assert sess.get_providers() == [CEREBRAS, "CPUExecutionProvider"]
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], np.maximum(x + [1, -2, 3, -4], 0))
    assert sess.get_devices_used()[0] in ("wse2", "cpu")


def test_bad_fabric_option_is_a_clear_error(add_relu_model):
    with pytest.raises(rt.InvalidArgument, match="fabric"):
        rt.InferenceSession(add_relu_model, providers=[(CEREBRAS, {"fabric": "banana"})])
    with pytest.raises(rt.InvalidArgument, match="no_such_option"):
        rt.InferenceSession(add_relu_model, providers=[(CEREBRAS, {"no_such_option": "1"})])


@pytest.mark.parametrize("name,fabric,lowered", [
    ("encoder", "128x128", {"attention", "gemv", "norm"}),
    ("gru", "64x64", {"gru"}),
])
def test_every_partition_of_the_encoder_and_gru_generates_csl_with_every_node_lowered(models, tmp_path, name, fabric,
                                                                                   lowered):
    # `pyflame-rt plan --artifacts`: the generator runs the structural checker on every partition
    # before writing it (a partition failing a check is listed under csl.failed with the reason).
    cli = os.path.join(REPO, "build", "bin", "pyflame-rt")
    r = subprocess.run([cli, "plan", os.path.join(models, f"{name}.onnx"), "--device", "wse3", "--fabric", fabric,
                        "--json", "--artifacts", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["csl"]["failed"] == {}
    assert rep["csl"]["written"] == [f"p{p['id']}" for p in rep["partitions"]]
    seen = set()
    for p in rep["partitions"]:
        header = (tmp_path / f"p{p['id']}" / "pe_program.csl").read_text().split("\nparam ")[0]
        # "//   op3: GRU '/gru/GRU' (gru) on PEs [...]" or "//   (host) Squeeze '...': data movement"
        ops = re.findall(r"^//   (?:op\d+: (\S+) '([^']*)' \((\w+)\)|\(host\) (\S+) '([^']*)')", header, re.M)
        assert [o["node"] for o in p["ops"]] == [o[1] or o[4] for o in ops], f"p{p['id']}"
        seen.update(o[2] for o in ops if o[2])
    assert lowered <= seen, seen
