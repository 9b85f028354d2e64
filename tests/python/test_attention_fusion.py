"""The exported transformer encoder (torch nn.TransformerEncoder, 4 layers) has its attention
fused into pyflame_rt.MultiHeadAttention, run natively on the CPU device, and agrees with the
same model optimised without attention_fusion."""

import os

import numpy as np

import pyflame_rt as rt

import export_models  # noqa: E402 - tests/tools is put on sys.path by conftest.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_DIR = os.path.join(REPO, "build", "models")


def test_encoder_attention_is_fused_native_and_unchanged():
    path = export_models.export(MODEL_DIR, ["encoder"])["encoder"]
    fused = rt.InferenceSession(path)
    options = rt.SessionOptions()
    options.disabled_passes = ["attention_fusion"]
    unfused = rt.InferenceSession(path, options)
    assert fused.graph_text().count("pyflame_rt.MultiHeadAttention(") == 4
    assert "MultiHeadAttention" not in unfused.graph_text()
    assert not [n for n in fused.get_fallback_nodes() if "MultiHeadAttention" in n]
    x = np.random.default_rng(3).standard_normal((1, 128, 256)).astype(np.float32)
    a = fused.run(None, {"input": x})[0].astype(np.float64)
    b = unfused.run(None, {"input": x})[0].astype(np.float64)
    assert np.abs(a - b).max() / np.abs(b).max() < 1e-5
