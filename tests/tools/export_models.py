#!/usr/bin/python3
"""Exports the whole-model test and benchmark models from Debian's python3-torch/torchvision
with fixed seeds and random weights (nothing is downloaded).

    /usr/bin/python3 tests/tools/export_models.py OUTDIR [NAME ...]

resnet50, mobilenet_v2, efficientnet_b0: input "input" [1,3,224,224] -> "output"
encoder: 4-layer TransformerEncoder d=256, 4 heads, ff 1024, input "input" [1,128,256]
gru: 2-layer GRU 64->128, inputs "input" [1,50,64] and "h0" [2,1,128] -> "output", "hn"
cifar_cnn (not in the default list; for the batching benchmark): the classic small CIFAR-10
  CNN, 4 conv 3x3 (32, 32, 64, 64) with 2 max-pools, Linear 4096->512->10, softmax;
  input "image" [batch,3,32,32] -> "probs" [batch,10]
mlp (not in the default list): a tabular MLP, Linear 64->256->256->128->10 with ReLUs and a
  Softmax; input "features" [1,64] -> "probs" [1,10] (a model of small nodes: each one's fixed
  cost, not its arithmetic, is its time)
audio_tdnn (not in the default list): a small 1-D speaker-embedding model in the ECAPA style,
  Conv1d + ReLU + BatchNorm blocks (one dilated, one with squeeze-excite over ReduceMean),
  attentive statistics pooling (Softmax over time, ReduceSum, Sqrt, Concat), BatchNorm and a
  Linear to 192; input "feats" [1,80,200] -> "embedding" [1,192]
"""

import os
import sys

MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0", "encoder", "gru"]
EXTRA_MODELS = ["cifar_cnn", "audio_tdnn", "mlp"]
DYNAMIC_BATCH = {"cifar_cnn": {"image": {0: "batch"}, "probs": {0: "batch"}}}


def _build(name):
    import torch
    from torch import nn
    torch.manual_seed(0)
    if name in ("resnet50", "mobilenet_v2", "efficientnet_b0"):
        import torchvision
        model = getattr(torchvision.models, name)(weights=None)
        return model.eval(), (torch.randn(1, 3, 224, 224),), ["input"], ["output"]
    if name == "encoder":
        layer = nn.TransformerEncoderLayer(d_model=256, nhead=4, dim_feedforward=1024, batch_first=True)
        model = nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
        return model.eval(), (torch.randn(1, 128, 256),), ["input"], ["output"]
    if name == "gru":
        class Gru(nn.Module):
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(input_size=64, hidden_size=128, num_layers=2, batch_first=True)

            def forward(self, x, h0):
                return self.gru(x, h0)
        return Gru().eval(), (torch.randn(1, 50, 64), torch.zeros(2, 1, 128)), ["input", "h0"], ["output", "hn"]
    if name == "cifar_cnn":
        class CifarCnn(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(
                    nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                    nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 8 * 8, 512), nn.ReLU(),
                    nn.Linear(512, 10))

            def forward(self, image):
                return torch.softmax(self.body(image), dim=-1)
        return CifarCnn().eval(), (torch.randn(1, 3, 32, 32),), ["image"], ["probs"]
    if name == "audio_tdnn":
        def block(cin, cout, k, dilation=1):
            return nn.Sequential(nn.Conv1d(cin, cout, k, dilation=dilation, padding=dilation * (k - 1) // 2),
                                 nn.ReLU(), nn.BatchNorm1d(cout))

        class AudioTdnn(nn.Module):
            def __init__(self):
                super().__init__()
                self.b1, self.b2, self.b3 = block(80, 256, 5), block(256, 256, 3, 2), block(256, 256, 1)
                self.se = nn.Sequential(nn.Conv1d(256, 64, 1), nn.ReLU(), nn.Conv1d(64, 256, 1), nn.Sigmoid())
                self.att = nn.Sequential(nn.Conv1d(256, 128, 1), nn.Tanh(), nn.Conv1d(128, 256, 1))
                self.bn = nn.BatchNorm1d(512)
                self.fc = nn.Linear(512, 192)

            def forward(self, feats):
                x = self.b1(feats)
                x = self.b2(x)
                x = x * self.se(x.mean(dim=2, keepdim=True))
                x = self.b3(x)
                w = torch.softmax(self.att(x), dim=2)
                mu = torch.sum(x * w, dim=2)
                sg = torch.sqrt((torch.sum(x * x * w, dim=2) - mu * mu).clamp(min=1e-5))
                return self.fc(self.bn(torch.cat([mu, sg], dim=1)))

        model = AudioTdnn().eval()
        with torch.no_grad():  # non-trivial statistics, so the BatchNorms are not identities
            for m in model.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
        return model, (torch.randn(1, 80, 200),), ["feats"], ["embedding"]
    if name == "mlp":
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 128),
                              nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1)).eval()
        return model, (torch.randn(1, 64),), ["features"], ["probs"]
    raise ValueError(f"unknown model '{name}' (known: {', '.join(MODELS + EXTRA_MODELS)})")


def export(outdir, names=None):
    """Exports each named model to OUTDIR/<name>.onnx unless it already exists."""
    import torch
    os.makedirs(outdir, exist_ok=True)
    paths = {}
    for name in names or MODELS:
        path = os.path.join(outdir, f"{name}.onnx")
        if not os.path.exists(path):
            model, args, inputs, outputs = _build(name)
            tmp = path + ".tmp"
            # Grad stays enabled: torch 1.13 would otherwise take the transformer "fast path"
            # (a fused op ONNX export does not know).
            torch.onnx.export(model, args, tmp, input_names=inputs, output_names=outputs,
                              dynamic_axes=DYNAMIC_BATCH.get(name), opset_version=13)
            os.replace(tmp, path)  # never leave a half-written model behind
        paths[name] = path
    return paths


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for name, path in export(sys.argv[1], sys.argv[2:] or None).items():
        print(f"{name}: {path}")
