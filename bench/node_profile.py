#!/usr/bin/python3
"""Per-node profiles of PyFlameRT and ONNX Runtime on one model, side by side: each node's
minimum over the runs (robust to a loaded machine: a run slowed by another process raises the
mean, rarely the minimum), summed per op type, and the largest nodes of ours.

    PYTHONPATH=build/python /usr/bin/python3 bench/node_profile.py MODEL.onnx [--threads 1]
        [--runs 20] [--warmup 3] [--top 15] [--ours-only] [--stat min|median] [--dump FILE.json]

Ours: InferenceSession.run_with_profiling (graph after our passes, fused names). ORT:
onnxruntime-node's profiler (bench/ort_profile.js), its own fused nodes. The two graphs are
fused differently, so compare op-type totals and the sum of minima, not node by node.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def reduce_runs(per_run, stat):
    """Each node's minimum (default: robust to a loaded machine) or median over its runs (what a
    typical run pays: a node slowed by cache misses in most runs shows here, not in the minimum)."""
    pick = min if stat == "min" else (lambda v: float(np.median(v)))
    return {n: float(pick(v)) for n, v in per_run.items()}


def ours_profile(model, x, threads, runs, warmup, stat="min"):
    import pyflame_rt as rt
    sess = rt.InferenceSession(model, rt.SessionOptions(num_threads=threads))
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    per_run, kind = {}, {}
    for _ in range(runs):
        p = sess.run_with_profiling(feed)
        for op in p.operations:
            per_run.setdefault(op.name, []).append(op.duration_us)
            kind[op.name] = op.op_type
    return reduce_runs(per_run, stat), kind


def ort_profile(model, inp, threads, runs, warmup, tmp, stat="min"):
    prefix = os.path.join(tmp, "ort_prof")
    r = subprocess.run(["node", os.path.join(HERE, "ort_profile.js"), model, inp, str(threads), str(runs),
                        str(warmup), prefix], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    files = [f for f in r.stdout.split() if f.endswith(".json")]
    with open(files[-1]) as f:
        events = json.load(f)
    per_run = {}
    kind = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        name = e["name"][:-len("_kernel_time")]
        per_run.setdefault(name, []).append(e["dur"])
        kind[name] = e.get("args", {}).get("op_name", "?")
    # The first WARMUP runs of every node are warm-up.
    return reduce_runs({n: v[warmup:] or v for n, v in per_run.items()}, stat), kind


def by_type(best, kind):
    out = {}
    for n, us in best.items():
        t = kind[n]
        c, s = out.get(t, (0, 0.0))
        out[t] = (c + 1, s + us)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--ours-only", action="store_true")
    ap.add_argument("--stat", choices=["min", "median"], default="min",
                    help="each node's minimum over the runs (default) or its median")
    ap.add_argument("--dump", help="write both profiles (per-node minima or medians) to this JSON file")
    a = ap.parse_args()
    import onnx
    m = onnx.load(a.model, load_external_data=False)
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.npy")
        np.save(inp, x)
        ours, ours_kind = ours_profile(a.model, x, a.threads, a.runs, a.warmup, a.stat)
        theirs, theirs_kind = ({}, {}) if a.ours_only else ort_profile(a.model, inp, a.threads, a.runs, a.warmup, tmp,
                                                                       a.stat)
    what = "minima" if a.stat == "min" else "medians"
    print(f"{os.path.basename(a.model)}, {a.threads} thread(s), per-node {what} over {a.runs} runs; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"sum of {what}: ours {sum(ours.values()) / 1e3:.2f} ms ({len(ours)} nodes), "
          f"ORT {sum(theirs.values()) / 1e3:.2f} ms ({len(theirs)} nodes)")
    for label, b, k in (("ours", ours, ours_kind), ("ORT", theirs, theirs_kind)):
        if not b:
            continue
        print(f"\n{label} by op type (nodes, ms):")
        for t, (c, s) in sorted(by_type(b, k).items(), key=lambda kv: -kv[1][1]):
            print(f"  {t:32s} {c:4d} {s / 1e3:8.2f}")
    for label, b, k in (("ours", ours, ours_kind), ("ORT", theirs, theirs_kind)):
        if not b:
            continue
        print(f"\n{label}, largest {a.top} nodes (us):")
        for n, us in sorted(b.items(), key=lambda kv: -kv[1])[:a.top]:
            print(f"  {us:9.1f}  {k[n]:20s} {n}")
    if a.dump:
        with open(a.dump, "w") as f:
            json.dump({"ours": ours, "ours_kind": ours_kind, "ort": theirs, "ort_kind": theirs_kind}, f)


if __name__ == "__main__":
    sys.exit(main())
