#!/usr/bin/python3
"""Builds the bundled example models (committed next to this script) with fixed seeds.

    /usr/bin/python3 examples/models/make_examples.py

tiny_cnn.onnx   image classifier: Conv-BN-ReLU-MaxPool x2, global pool, Linear, Softmax
                input "image" float[batch,3,32,32] -> "probs" float[batch,10]
tiny_gru.onnx   streaming audio encoder: GRU over 40-dim features with explicit state
                inputs "features" float[1,T,40], "h" float[1,1,64] -> "embedding", "h_out"
"""

import os

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, image):
        return torch.softmax(self.body(image), dim=-1)


class TinyGru(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(40, 64, batch_first=True)
        self.proj = nn.Linear(64, 32)

    def forward(self, features, h):
        y, h_out = self.gru(features, h)
        return self.proj(y), h_out


def main():
    torch.manual_seed(0)
    cnn = TinyCnn().eval()
    # Give BatchNorm non-trivial statistics so the demo exercises them.
    for m in cnn.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    torch.onnx.export(cnn, torch.randn(1, 3, 32, 32), os.path.join(HERE, "tiny_cnn.onnx"),
                      input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}}, opset_version=13)
    gru = TinyGru().eval()
    torch.onnx.export(gru, (torch.randn(1, 25, 40), torch.zeros(1, 1, 64)),
                      os.path.join(HERE, "tiny_gru.onnx"), input_names=["features", "h"],
                      output_names=["embedding", "h_out"],
                      dynamic_axes={"features": {1: "time"}, "embedding": {1: "time"}},
                      opset_version=13)


if __name__ == "__main__":
    main()
