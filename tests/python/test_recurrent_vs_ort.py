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


# Single LSTM and RNN nodes on our loop (stop 16) with what oneDNN's primitive cannot run:
# run-time weights, sequence_lens, peepholes, clip, input_forget, other activations. ONNX
# Runtime refuses layout=1, so those run time-major here (the C++ tests compare layout=1 with
# the reference kernel). name: (op, direction, attributes, inputs beyond X, W, R, B).
NODE_CASES = {
    "lstm_runtime_weights_reverse": ("LSTM", "reverse", {}, ["runtime_weights", "h0", "c0"]),
    "lstm_sequence_lens_bidirectional": ("LSTM", "bidirectional", {}, ["lens", "h0", "c0"]),
    "lstm_peepholes_clip": ("LSTM", "forward", {"clip": 0.6}, ["p", "h0", "c0"]),
    "lstm_input_forget": ("LSTM", "forward", {"input_forget": 1}, ["lens", "c0"]),
    "lstm_activations": ("LSTM", "bidirectional",
                         {"activations": ["HardSigmoid", "Tanh", "Relu", "Sigmoid", "Softsign", "Tanh"],
                          "activation_alpha": [0.25], "activation_beta": [0.45]}, ["h0"]),
    "rnn_tanh_bidirectional_lens": ("RNN", "bidirectional", {}, ["lens", "h0"]),
    "rnn_relu_clip_reverse": ("RNN", "reverse", {"activations": ["Relu"], "clip": 0.8}, ["h0"]),
    "rnn_runtime_weights": ("RNN", "forward", {}, ["runtime_weights"]),
}


def make_node_model(path, op, direction, attrs, extras, seq=6, batch=3, inputs=10, hidden=20):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    dirs, gates = (2 if direction == "bidirectional" else 1), (4 if op == "LSTM" else 1)
    scale = 1 / np.sqrt(hidden)
    arrays = {"x": rng.standard_normal((seq, batch, inputs)).astype(np.float32),
              "W": (rng.uniform(-1, 1, (dirs, gates * hidden, inputs)) * scale).astype(np.float32),
              "R": (rng.uniform(-1, 1, (dirs, gates * hidden, hidden)) * scale).astype(np.float32),
              "B": (rng.uniform(-1, 1, (dirs, 2 * gates * hidden)) * scale).astype(np.float32)}
    names = ["x", "W", "R", "B", "", "", "", ""]
    if "lens" in extras:
        arrays["lens"] = np.array([seq, 2, 4][:batch], dtype=np.int32)
        names[4] = "lens"
    for i, name in [(5, "h0"), (6, "c0"), (7, "p")]:
        if name in extras:
            shape = (dirs, 3 * hidden) if name == "p" else (dirs, batch, hidden)
            arrays[name] = (rng.uniform(-1, 1, shape) * (0.5 if name == "p" else 1)).astype(np.float32)
            names[i] = name
    names = names[:6] if op == "RNN" else names
    while names and not names[-1]:
        names.pop()
    outputs = ["y", "yh", "yc"] if op == "LSTM" else ["y", "yh"]
    node = helper.make_node(op, names, outputs, hidden_size=hidden, direction=direction, **attrs)
    runtime = {"x"} | ({"W", "R", "B"} if "runtime_weights" in extras else set()) | {"h0", "c0"}
    feeds = {n: a for n, a in arrays.items() if n in runtime}
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in feeds.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(a, n) for n, a in arrays.items() if n not in runtime])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    import onnx
    onnx.save(onnx_model, path)
    return feeds, outputs


@pytest.mark.parametrize("case", sorted(NODE_CASES))
def test_recurrent_node_on_our_loop_matches_onnxruntime(tmp_path, case):
    op, direction, attrs, extras = NODE_CASES[case]
    path = str(tmp_path / f"{case}.onnx")
    feeds, outputs = make_node_model(path, op, direction, attrs, extras)
    sess = rt.InferenceSession(path)
    ours = sess.run(None, feeds)
    assert sess.get_fallback_nodes() == []
    ref = ort_reference.run_ort(path, feeds)
    for name, value in zip(outputs, ours):
        assert value.shape == ref[name].shape, name
        scale = max(float(np.abs(ref[name]).max()), 1e-12)
        err = float(np.abs(value.astype(np.float64) - ref[name]).max()) / scale
        assert err <= REL_TOL, f"{case}/{name}: relative error {err:.2e}"
