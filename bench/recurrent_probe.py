#!/usr/bin/python3
"""Recurrent layers alone against ONNX Runtime: GRU, LSTM and RNN nodes in the shapes streaming
audio models use (batch 1, 50 steps, 64 inputs, H 128), one and both directions, time-major (ONNX
Runtime refuses layout=1), constant weights; an LSTM with its weights as run-time inputs. Each
runtime times every model in a fresh process per round (bench/pfrt_timer.py,
tests/tools/ort_run.js), the two alternating; prints p50 and minimum of both, their ratio, the
largest relative error and anything ours ran on reference kernels. --batch and --hidden take
comma-separated lists (every combination is a row); --cases picks rows by name; --ours-env
VAR=VALUE sets a variable for our side only. --before-pythonpath DIR times a second build of ours
(its python/ folder, e.g. a copy of build/python made before a change) in the same rounds,
alternating with the others, and adds its p50 and the ratio of ours to it.

    PYTHONPATH=build/python /usr/bin/python3 bench/recurrent_probe.py [--rounds 4] [--runs 100] [--threads 1]
        [--batch 1,4] [--hidden 64,128] [--cases lstm_forward,rnn_forward]
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

SEQ, INPUT = 50, 64
# name: (op, direction, layout, weights as run-time inputs)
CASES = {
    "gru_forward": ("GRU", "forward", 0, False),
    "gru_bidirectional": ("GRU", "bidirectional", 0, False),
    "gru_runtime_weights": ("GRU", "forward", 0, True),  # our loop (constant weights: oneDNN's GRU)
    "lstm_forward": ("LSTM", "forward", 0, False),
    "lstm_reverse": ("LSTM", "reverse", 0, False),
    "lstm_bidirectional": ("LSTM", "bidirectional", 0, False),
    "lstm_runtime_weights": ("LSTM", "forward", 0, True),
    "rnn_forward": ("RNN", "forward", 0, False),
    "rnn_bidirectional": ("RNN", "bidirectional", 0, False),
}
GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


def make_model(op, direction, layout, runtime_weights, batch, hidden, path):
    """Writes the model; returns the inputs it takes as (name, array) pairs."""
    rng = np.random.default_rng(0)
    dirs, gates = (2 if direction == "bidirectional" else 1), GATES[op]
    weights = [(n, (rng.standard_normal(s) * 0.1).astype(np.float32)) for n, s in
               [("W", (dirs, gates * hidden, INPUT)), ("R", (dirs, gates * hidden, hidden)),
                ("B", (dirs, 2 * gates * hidden))]]
    attrs = {"hidden_size": hidden, "direction": direction, "layout": layout}
    if op == "GRU":
        attrs["linear_before_reset"] = 1  # as PyTorch exports it
    node = helper.make_node(op, ["x", "W", "R", "B"], ["y"], **attrs)
    shape = [batch, SEQ, INPUT] if layout else [SEQ, batch, INPUT]
    feeds = [("x", np.random.default_rng(1).standard_normal(shape).astype(np.float32))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    if runtime_weights:
        feeds += weights
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in weights]
        initializers = []
    else:
        initializers = [numpy_helper.from_array(a, n) for n, a in weights]
    graph = helper.make_graph([node], op, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return feeds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", default="1")
    ap.add_argument("--hidden", default="128")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--ours-env", action="append", default=[])
    ap.add_argument("--before-pythonpath", default="")
    args = ap.parse_args()
    env = dict(os.environ)
    for kv in args.ours_env:
        k, v = kv.split("=", 1)
        env[k] = v
    env_before = {**env, "PYTHONPATH": args.before_pythonpath} if args.before_pythonpath else None
    tmp = tempfile.mkdtemp(prefix="pfrt_recurrent_")
    print(f"cpu {host.cpu_model()}, {args.threads} thread(s), {args.rounds} rounds x {args.runs} runs, "
          f"load {load_average():.1f}")
    before_head = " before p50 ms | before min ms | ours / before (p50) |" if env_before else ""
    print("| layer | batch | H | ours p50 ms | ORT p50 ms | p50 ratio | ours min ms | ORT min ms | max rel err | "
          "on reference kernels |" + before_head)
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if env_before else ""))
    rows = [(c, int(b), int(h)) for c in args.cases.split(",") for b in args.batch.split(",") for h in args.hidden.split(",")]
    for case, batch, hidden in rows:
        op, direction, layout, runtime_weights = CASES[case]
        name = f"{case}_b{batch}_h{hidden}"
        path = os.path.join(tmp, name + ".onnx")
        feeds = make_model(op, direction, layout, runtime_weights, batch, hidden, path)
        npys = []
        for n, a in feeds:
            npys.append(os.path.join(tmp, f"{name}_{n}.npy"))
            np.save(npys[-1], a)
        ours, theirs, before, fallback = [], [], [], []
        for _ in range(args.rounds):
            if env_before:
                before += run_json([sys.executable, os.path.join(HERE, "pfrt_timer.py"), path, str(args.threads),
                                    str(args.runs), str(args.warmup), os.path.join(tmp, name + "_before")] + npys,
                                   env=env_before)["latencies_ms"]
            r = run_json([sys.executable, os.path.join(HERE, "pfrt_timer.py"), path, str(args.threads), str(args.runs),
                          str(args.warmup), os.path.join(tmp, name + "_ours")] + npys, env=env)
            ours += r["latencies_ms"]
            fallback = r["fallback"]
            o = run_json(["node", os.path.join(REPO, "tests", "tools", "ort_run.js"), path, os.path.join(tmp, name + "_ort")]
                         + npys + ["--threads", str(args.threads), "--time", str(args.runs), "--warmup", str(args.warmup)])
            theirs += o["latencies_ms"]
        with open(os.path.join(tmp, name + "_ort", "outputs.json")) as f:
            first = list(json.load(f).values())[0]
        ref = np.load(os.path.join(tmp, name + "_ort", first)).astype(np.float64)
        got = np.load(os.path.join(tmp, name + "_ours", "0.npy")).astype(np.float64)
        err = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
        p50o, p50t = float(np.median(ours)), float(np.median(theirs))
        print(f"| {case} | {batch} | {hidden} | {p50o:.3f} | {p50t:.3f} | {p50o / p50t:.2f}x | {min(ours):.3f} | {min(theirs):.3f} | "
              f"{err:.1e} | {', '.join(fallback) or 'none'} |"
              + (f" {np.median(before):.3f} | {min(before):.3f} | {p50o / np.median(before):.3f} |" if before else ""),
              flush=True)


if __name__ == "__main__":
    main()
