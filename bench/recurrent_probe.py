#!/usr/bin/python3
"""Recurrent layers alone against ONNX Runtime: GRU and LSTM nodes in the shapes streaming audio
models use (batch 1, 50 steps, 64 inputs, H 128), one and both directions, time-major (ONNX
Runtime refuses layout=1), constant weights. Each runtime times every model in a fresh process per round
(bench/pfrt_timer.py, tests/tools/ort_run.js), the two alternating; prints p50 and minimum of
both, their ratio, the largest relative error and anything ours ran on reference kernels.

    PYTHONPATH=build/python /usr/bin/python3 bench/recurrent_probe.py [--rounds 4] [--runs 100] [--threads 1]
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

import host  # noqa: E402  (bench/ is sys.path[0])
from run_bench import load_average, run_json  # noqa: E402

SEQ, BATCH, INPUT, HIDDEN = 50, 1, 64, 128
# name: (op, direction, layout)
CASES = {
    "gru_forward": ("GRU", "forward", 0),
    "gru_bidirectional": ("GRU", "bidirectional", 0),
    "lstm_forward": ("LSTM", "forward", 0),
    "lstm_bidirectional": ("LSTM", "bidirectional", 0),
}


def make_model(op, direction, layout, path):
    rng = np.random.default_rng(0)
    dirs, gates = (2 if direction == "bidirectional" else 1), (3 if op == "GRU" else 4)
    weights = [numpy_helper.from_array((rng.standard_normal(s) * 0.1).astype(np.float32), n) for n, s in
               [("W", (dirs, gates * HIDDEN, INPUT)), ("R", (dirs, gates * HIDDEN, HIDDEN)), ("B", (dirs, 2 * gates * HIDDEN))]]
    attrs = {"hidden_size": HIDDEN, "direction": direction, "layout": layout}
    if op == "GRU":
        attrs["linear_before_reset"] = 1  # as PyTorch exports it
    node = helper.make_node(op, ["x", "W", "R", "B"], ["y"], **attrs)
    shape = [BATCH, SEQ, INPUT] if layout else [SEQ, BATCH, INPUT]
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return shape


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pfrt_recurrent_")
    print(f"cpu {host.cpu_model()}, {args.threads} thread(s), {args.rounds} rounds x {args.runs} runs, "
          f"load {load_average():.1f}")
    print("| layer | ours p50 ms | ORT p50 ms | p50 ratio | ours min ms | ORT min ms | max rel err | on reference kernels |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (op, direction, layout) in CASES.items():
        path = os.path.join(tmp, name + ".onnx")
        shape = make_model(op, direction, layout, path)
        x = os.path.join(tmp, name + "_x.npy")
        np.save(x, np.random.default_rng(1).standard_normal(shape).astype(np.float32))
        ours, theirs, fallback = [], [], []
        for _ in range(args.rounds):
            r = run_json([sys.executable, os.path.join(HERE, "pfrt_timer.py"), path, str(args.threads), str(args.runs),
                          str(args.warmup), os.path.join(tmp, name + "_ours"), x])
            ours += r["latencies_ms"]
            fallback = r["fallback"]
            o = run_json(["node", os.path.join(REPO, "tests", "tools", "ort_run.js"), path, os.path.join(tmp, name + "_ort"),
                          x, "--threads", str(args.threads), "--time", str(args.runs), "--warmup", str(args.warmup)])
            theirs += o["latencies_ms"]
        with open(os.path.join(tmp, name + "_ort", "outputs.json")) as f:
            first = list(json.load(f).values())[0]
        ref = np.load(os.path.join(tmp, name + "_ort", first)).astype(np.float64)
        got = np.load(os.path.join(tmp, name + "_ours", "0.npy")).astype(np.float64)
        err = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
        p50o, p50t = float(np.median(ours)), float(np.median(theirs))
        print(f"| {name} | {p50o:.3f} | {p50t:.3f} | {p50o / p50t:.2f}x | {min(ours):.3f} | {min(theirs):.3f} | "
              f"{err:.1e} | {', '.join(fallback) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
