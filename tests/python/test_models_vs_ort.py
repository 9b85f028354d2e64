"""Whole models exported from Debian's python3-torch match ONNX Runtime's outputs.

ResNet-50, MobileNetV2, EfficientNet-B0, a small transformer encoder and a 2-layer GRU
(random weights, fixed seeds) are
exported once into build/models by tests/tools/export_models.py; ONNX Runtime runs through
onnxruntime-node (npm). Agreement: max |ours - ort| / max |ort| <= 1e-4.
"""

import os

import numpy as np
import pytest

import pyflame_rt as rt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_DIR = os.path.join(REPO, "build", "models")
REL_TOL = 1e-4

import export_models  # noqa: E402 - tests/tools is put on sys.path by conftest.py
import ort_reference  # noqa: E402


def relative_error(ours, ref):
    scale = max(float(np.abs(ref).max()), 1e-12)
    return float(np.abs(ours.astype(np.float64) - ref.astype(np.float64)).max()) / scale


@pytest.fixture(scope="module")
def models():
    os.makedirs(MODEL_DIR, exist_ok=True)
    export_models.export(MODEL_DIR, ["resnet50", "mobilenet_v2", "encoder", "efficientnet_b0", "gru"])
    return MODEL_DIR


@pytest.mark.parametrize("name,shape", [
    ("resnet50", (1, 3, 224, 224)),
    ("mobilenet_v2", (1, 3, 224, 224)),
    ("encoder", (1, 128, 256)),
    ("efficientnet_b0", (1, 3, 224, 224)),
    ("gru", (1, 50, 64)),
])
def test_model_matches_onnxruntime(models, name, shape):
    path = os.path.join(models, f"{name}.onnx")
    sess = rt.InferenceSession(path)
    x = np.random.default_rng(42).standard_normal(shape).astype(np.float32)
    feed = {sess.get_inputs()[0].name: x}
    for extra in sess.get_inputs()[1:]:  # recurrent state inputs start from random values too
        feed[extra.name] = np.random.default_rng(7).standard_normal(extra.shape).astype(np.float32)
    ours = sess.run(None, feed)
    ref = ort_reference.run_ort(path, feed)
    names = [o.name for o in sess.get_outputs()]
    assert len(ours) == len(ref)
    for out_name, value in zip(names, ours):
        expected = ref[out_name]
        assert value.shape == expected.shape, out_name
        err = relative_error(value, expected)
        print(f"{name}/{out_name}: relative error {err:.2e}")
        assert err <= REL_TOL, f"{name}/{out_name}: relative error {err:.2e} > {REL_TOL}"
