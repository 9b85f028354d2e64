"""Recurrent layers as PyTorch exports them (2 layers, bidirectional, batch-first, with initial
states) run natively and match ONNX Runtime: nn.LSTM (which ran on the reference kernel until
stop 15, ~150x ORT's time) and a bidirectional nn.GRU (our loop then, now oneDNN per direction).
"""

import os

import numpy as np
import pytest

import pyflame_rt as rt

import ort_reference  # noqa: E402 - tests/tools is put on sys.path by conftest.py

torch = pytest.importorskip("torch")
REL_TOL = 1e-4


class Recurrent(torch.nn.Module):
    def __init__(self, kind):
        super().__init__()
        cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
        self.rnn = cls(input_size=24, hidden_size=32, num_layers=2, batch_first=True, bidirectional=True)
        self.kind = kind

    def forward(self, x, h0, c0):
        if self.kind == "lstm":
            y, (h, c) = self.rnn(x, (h0, c0))
            return y, h, c
        y, h = self.rnn(x, h0)
        return y, h, c0 * 1.0


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_exported_recurrent_layer_runs_natively_and_matches_onnxruntime(tmp_path, kind):
    torch.manual_seed(3)
    model = Recurrent(kind).eval()
    x = torch.randn(2, 7, 24)
    h0, c0 = torch.randn(4, 2, 32), torch.randn(4, 2, 32)
    path = str(tmp_path / f"{kind}.onnx")
    torch.onnx.export(model, (x, h0, c0), path, input_names=["x", "h0", "c0"], output_names=["y", "h", "c"],
                      opset_version=14)
    feed = {"x": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
    sess = rt.InferenceSession(path)
    ours = sess.run(None, feed)
    recurrent = [n for n in sess.get_fallback_nodes() if "LSTM" in n or "GRU" in n]
    assert recurrent == [], recurrent
    ref = ort_reference.run_ort(path, feed)
    for name, value in zip(["y", "h", "c"], ours):
        scale = max(float(np.abs(ref[name]).max()), 1e-12)
        err = float(np.abs(value.astype(np.float64) - ref[name]).max()) / scale
        assert value.shape == ref[name].shape, name
        assert err <= REL_TOL, f"{kind}/{name}: relative error {err:.2e}"
