"""InferenceSession.from_pytorch / from_torchscript: small models built here, exported through
Debian's python3-torch, outputs equal to torch's within 1e-4."""

import sys

import numpy as np
import pytest

import pyflame_rt as rt

torch = pytest.importorskip("torch")


class SmallNet(torch.nn.Module):
    """Conv-BN-ReLU, pooling and a Linear head: enough ops to exercise the export."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        return self.fc(h.mean(dim=(2, 3)))


class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(6, 4)

    def forward(self, a, b):
        return torch.tanh(self.proj(a)) * b


def small_net():
    torch.manual_seed(0)
    net = SmallNet()
    with torch.no_grad():  # non-trivial statistics so BatchNorm matters
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 1.5)
    return net.eval()


def torch_out(module, *arrays):
    with torch.no_grad():
        return module(*[torch.from_numpy(a) for a in arrays]).numpy()


def test_from_pytorch_checkpoint_of_whole_module(tmp_path):
    net = small_net()
    path = tmp_path / "net.pt"
    torch.save(net, path)
    sess = rt.InferenceSession.from_pytorch(str(path), input_shapes={"x": [2, 3, 8, 8]})
    assert [i.name for i in sess.get_inputs()] == ["x"]
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, torch_out(net, x), atol=1e-4, rtol=0)


def test_from_pytorch_module_with_two_inputs_and_dynamic_batch():
    torch.manual_seed(1)
    net = TwoInputs().eval()
    sess = rt.InferenceSession.from_pytorch(net, input_shapes={"a": [1, 6], "b": [1, 4]}, output_names=["y"],
                                            dynamic_batch=True)
    assert [o.name for o in sess.get_outputs()] == ["y"]
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 6)).astype(np.float32)  # batch 3 although traced with 1
    b = rng.standard_normal((3, 4)).astype(np.float32)
    (y,) = sess.run(None, {"a": a, "b": b})
    np.testing.assert_allclose(y, torch_out(net, a, b), atol=1e-4, rtol=0)


def test_from_torchscript(tmp_path):
    net = small_net()
    path = tmp_path / "net_scripted.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    sess = rt.InferenceSession.from_torchscript(path, input_shapes={"x": [1, 3, 8, 8]})
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, torch_out(net, x), atol=1e-4, rtol=0)
    # A TorchScript file also works through from_pytorch (torch.load refuses it, jit.load reads it).
    (y2,) = rt.InferenceSession.from_pytorch(str(path), input_shapes={"x": [1, 3, 8, 8]}).run(None, {"x": x})
    np.testing.assert_allclose(y2, y, atol=1e-6, rtol=0)


def test_state_dict_and_bad_arguments_are_clear(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(small_net().state_dict(), path)
    with pytest.raises(rt.InvalidArgument, match="load_state_dict"):
        rt.InferenceSession.from_pytorch(str(path), input_shapes={"x": [1, 3, 8, 8]})
    with pytest.raises(rt.InvalidArgument, match="input_shapes"):
        rt.InferenceSession.from_pytorch(small_net())
    with pytest.raises(rt.NoSuchFile, match="nothing.pt"):
        rt.InferenceSession.from_torchscript(tmp_path / "nothing.pt", input_shapes={"x": [1]})


def test_missing_torch_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match="python3-torch"):
        rt.InferenceSession.from_pytorch("model.pt", input_shapes={"x": [1]})
