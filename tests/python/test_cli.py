"""The pyflame-rt command line: inspect, run, convert (and the .pfm round trip it enables)."""

import os
import subprocess

import numpy as np
import pytest

import pyflame_rt as rt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")


def cli(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120)


def test_inspect_lists_io_ops_and_parameters():
    r = cli("inspect", CNN)
    assert r.returncode == 0, r.stderr
    assert "image  tensor(float)  [batch,3,32,32]" in r.stdout
    assert "probs  tensor(float)" in r.stdout
    assert "Conv" in r.stdout and "Softmax" in r.stdout
    params = int(r.stdout.split("parameters: ")[1].split()[0])
    assert params > 5000


def test_run_writes_outputs_equal_to_python(tmp_path):
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = cli("run", CNN, "--input", f"image={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    probs = np.load(tmp_path / "out" / "probs.npy")
    (expected,) = rt.InferenceSession(CNN).run(None, {"image": x})
    # The CLI and this module may be two builds (`make sanitize-asan-python` runs build-asan's
    # -O1 module beside build/'s -O3 CLI: sums in another order, 1.5e-8 apart).
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


def test_convert_to_pfm_runs_identically(tmp_path):
    pfm = tmp_path / "tiny_cnn.pfm"
    r = cli("convert", CNN, "-o", str(pfm))
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(4).standard_normal((1, 3, 32, 32)).astype(np.float32)
    a = rt.InferenceSession(CNN).run(None, {"image": x})[0]
    b = rt.InferenceSession(str(pfm)).run(None, {"image": x})[0]
    np.testing.assert_array_equal(a, b)
    assert [i.shape for i in rt.InferenceSession(str(pfm)).get_inputs()] == [["batch", 3, 32, 32]]


@pytest.mark.parametrize("args,needle", [
    (("inspect", "/no/such.onnx"), "NoSuchFile"),
    (("run", CNN, "--input", "image"), "NAME=FILE.npy"),
    (("run", CNN, "--input", "image=/no/such.npy"), "/no/such.npy"),
    (("frobnicate", CNN), "usage"),
])
def test_errors_are_clear_and_nonzero(args, needle):
    r = cli(*args)
    assert r.returncode != 0
    assert needle in r.stderr


def test_cpp_example_runs_the_model():
    exe = os.path.join(REPO, "build", "bin", "cpp_inference")
    r = subprocess.run([exe, CNN], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "output probs float32[1,10]" in r.stdout
    x = np.array([(i % 7) * 0.1 for i in range(3 * 32 * 32)], np.float32).reshape(1, 3, 32, 32)
    (probs,) = rt.InferenceSession(CNN).run(None, {"image": x})
    assert f"first {probs[0, 0]:.6g}" in r.stdout
