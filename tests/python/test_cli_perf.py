"""The pyflame-rt CLI after the move to CLI11: --version on every command, and `perf`
(latency percentiles, throughput, random / .npy / shaped inputs, JSON, profile export)."""

import json
import os
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper

import pyflame_rt as rt
from conftest import make_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")


def cli(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def perf_json(*args):
    r = cli("perf", CNN, "--json", "--threads", 1, "--warmup", 1, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("command", [[], ["inspect"], ["run"], ["convert"], ["serve"], ["perf"]])
def test_version_on_every_command(command):
    r = cli(*command, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"pyflame-rt {rt.__version__}"


def test_help_lists_every_command():
    r = cli("--help")
    assert r.returncode == 0
    for command in ("inspect", "run", "convert", "serve", "perf"):
        assert command in r.stdout


def test_perf_text_report():
    r = cli("perf", CNN, "--iterations", 5, "--warmup", 1, "--batch", 2, "--threads", 1)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "input image: float32[2,3,32,32] (random)" in out
    assert "measured: 5 runs" in out
    for needle in ("p50 ", "p90 ", "p99 ", "mean ", "samples/s (batch 2)"):
        assert needle in out


def test_perf_json_statistics_are_consistent():
    j = perf_json("--iterations", 12, "--shapes", "image=3x3x32x32")
    assert j["runs"] == 12 and j["warmup_runs"] == 1 and j["batch"] == 3
    assert j["inputs"] == [{"name": "image", "dtype": "float32", "shape": [3, 3, 32, 32], "source": "random"}]
    lat = j["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert j["throughput"]["runs_per_s"] == pytest.approx(12 / j["total_s"])
    assert j["throughput"]["samples_per_s"] == pytest.approx(3 * j["throughput"]["runs_per_s"])
    assert j["precision"] == "fp32" and j["providers"] == ["CPUExecutionProvider"]
    assert j["version"] == rt.__version__


def test_perf_npy_input_and_duration(tmp_path):
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    j = perf_json("--input", f"image={tmp_path / 'x.npy'}", "--iterations", 1, "--duration", 0.3)
    assert j["inputs"][0]["source"] == str(tmp_path / "x.npy") and j["inputs"][0]["shape"] == [2, 3, 32, 32]
    assert j["total_s"] >= 0.3 and j["runs"] >= 1  # both limits are minimums


def test_perf_export_profile(tmp_path):
    trace = tmp_path / "trace.json"
    j = perf_json("--iterations", 2, "--export-profile", trace)
    assert j["profile"] == str(trace)
    events = json.loads(trace.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert any("Conv" in json.dumps(e) for e in events)


def test_perf_precision_other_than_fp32_is_not_available_yet():
    r = cli("perf", CNN, "--precision", "fp16")
    assert r.returncode != 0 and "not available yet" in r.stderr and "fp16" in r.stderr
    r = cli("perf", CNN, "--precision", "fp7")
    assert r.returncode == 2 and "fp7" in r.stderr


@pytest.mark.parametrize("args,needles", [
    (("--shapes", "nosuch=1x3"), ["nosuch", "image"]),
    (("--shapes", "image=1xq"), ["1xq", "1x3x224x224"]),
    (("--input", "image"), ["NAME=FILE.npy"]),
    (("--device", "gpu"), ["gpu", "cpu"]),
    (("--iterations", "many"), ["many"]),
    (("--iterations", "0"), ["nothing would be measured"]),
])
def test_perf_errors_are_clear(args, needles):
    r = cli("perf", CNN, *args)
    assert r.returncode != 0
    for needle in needles:
        assert needle in r.stderr


def test_perf_symbolic_inner_dim_needs_shapes(tmp_path):
    model = make_model([helper.make_node("Relu", ["ids"], ["y"])],
                       [helper.make_tensor_value_info("ids", TensorProto.FLOAT, ["batch", "seq"])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq"])])
    path = tmp_path / "seq.onnx"
    path.write_bytes(model.SerializeToString())
    r = cli("perf", path, "--iterations", 1)
    assert r.returncode != 0 and "--shapes ids=" in r.stderr and "seq" in r.stderr
    r = cli("perf", path, "--iterations", 2, "--warmup", 0, "--shapes", "ids=2x7", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inputs"][0]["shape"] == [2, 7]
