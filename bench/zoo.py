#!/usr/bin/python3
"""Zoo mode: torchvision classification, segmentation and detection models (random weights,
exported by torch 1.13 at opset 17) run in PyFlameRT and in ONNX Runtime side by side, outputs
compared by relative L2 error (pass: <= 1e-4 on every output). The table gives p50 latency of
both and their ratio, the ratio of CPU time per run (each runtime's lowest round mean; less
swayed than wall time when other jobs share the cores), the load average around each model,
and the op types our session ran on reference kernels (get_fallback_nodes(), run-time
fallbacks included): a model passes only when its outputs match and nothing runs on the
reference path. Prints a markdown table headed by the CPU model.

    PYTHONPATH=build/python /usr/bin/python3 bench/zoo.py [--models regnet_y_400mf,resnet18]
        [--family classification,segmentation,detection] [--threads 1] [--rounds 2] [--runs 5]
        [--markdown FILE] [--baseline DIR] [--baseline-env KEY=VALUE ...]

--baseline DIR also times the pyflame_rt package in DIR (another build's build/python) in every
round, between ours and ORT; --baseline-env sets variables for that baseline process only (alone,
it makes the baseline this build under them: `--baseline-env PFRT_DISABLED_PASSES=some_pass`
is a same-build A/B of one pass). The table then gains the baseline's p50 and its ratio to ORT.

Exported models are cached under build/zoo/ (never in git); an export that fails is reported
as such. Our sessions run with PFRT_VERIFY_PASSES=1: every graph pass is checked on every
model. Each model runs in fresh processes, one per runtime and round, the two runtimes
alternating (a crash or a hang fails that model only).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))
sys.path.insert(0, HERE)

import ort_reference  # noqa: E402
from run_bench import cpu_model  # noqa: E402

# name -> (family, input shape)
ZOO = {
    "resnet18": ("classification", (1, 3, 224, 224)),
    "mobilenet_v3_small": ("classification", (1, 3, 224, 224)),
    "efficientnet_b0": ("classification", (1, 3, 224, 224)),
    "regnet_y_400mf": ("classification", (1, 3, 224, 224)),
    "regnet_x_400mf": ("classification", (1, 3, 224, 224)),
    "shufflenet_v2_x1_0": ("classification", (1, 3, 224, 224)),
    "squeezenet1_1": ("classification", (1, 3, 224, 224)),
    "mnasnet0_5": ("classification", (1, 3, 224, 224)),
    "densenet121": ("classification", (1, 3, 224, 224)),
    "googlenet": ("classification", (1, 3, 224, 224)),
    "convnext_tiny": ("classification", (1, 3, 224, 224)),
    "swin_t": ("classification", (1, 3, 224, 224)),
    "maxvit_t": ("classification", (1, 3, 224, 224)),
    "vit_b_16": ("classification", (1, 3, 224, 224)),
    "deeplabv3_mobilenet_v3_large": ("segmentation", (1, 3, 224, 224)),
    "lraspp_mobilenet_v3_large": ("segmentation", (1, 3, 224, 224)),
    "fcn_resnet50": ("segmentation", (1, 3, 224, 224)),
    "ssdlite320_mobilenet_v3_large": ("detection", (1, 3, 320, 320)),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ("detection", (1, 3, 320, 320)),
}

EXPORT_SCRIPT = r"""
import sys, torch, torchvision
name, family, shape, path = sys.argv[1], sys.argv[2], eval(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
ns = {"classification": torchvision.models, "segmentation": torchvision.models.segmentation,
      "detection": torchvision.models.detection}[family]
kwargs = {"weights": None}
if family == "detection":
    kwargs["weights_backbone"] = None
if family == "segmentation":
    kwargs.update(weights_backbone=None, aux_loss=False)
model = getattr(ns, name)(**kwargs).eval()
# A Linear initialised to zero (ViT's head) makes the output its bias whatever the input: the
# comparison would test nothing. Such weights get random values instead.
for m in model.modules():
    if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
        torch.nn.init.normal_(m.weight, std=0.02)
x = torch.randn(*shape)
if family == "detection":
    torch.onnx.export(model, ([x[0]],), path, opset_version=17, input_names=["input"])
else:
    torch.onnx.export(model, x, path, opset_version=17, input_names=["input"])
"""


def export(name, cache):
    family, shape = ZOO[name]
    path = os.path.join(cache, f"{name}.onnx")
    if os.path.exists(path):
        return path, None
    os.makedirs(cache, exist_ok=True)
    tmp = path + ".part"
    r = subprocess.run([sys.executable, "-c", EXPORT_SCRIPT, name, family, repr(shape), tmp],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0 or not os.path.exists(tmp):
        return None, "export failed: " + (r.stderr.strip().splitlines() or ["?"])[-1][:160]
    os.replace(tmp, path)
    return path, None


def run_json(cmd, env, timeout):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError((r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1][:200])
    return json.loads(r.stdout.strip().splitlines()[-1])


def rel_l2(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return float("inf")
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))


def load_average():
    return os.getloadavg()[0]


def fallback_ops(entries):
    """{op_type: count} of get_fallback_nodes() entries ("OpType 'node': reason")."""
    ops = {}
    for e in entries:
        op = e.split(" '", 1)[0]
        ops[op] = ops.get(op, 0) + 1
    return ops


def bench(name, path, threads, rounds, runs, warmup, tmp, modules, timeout, baseline_env=None):
    """Both runtimes in fresh processes, alternating round by round (ours, then ORT) so that a
    change of load on a shared machine hits both; p50 over every timed run of each."""
    family, shape = ZOO[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if family == "detection":
        x = x[0]
    inp = os.path.join(tmp, f"{name}_in.npy")
    np.save(inp, x)
    # Every graph pass is verified on every zoo model (a load-time check, outside the timing).
    env = dict(os.environ, ORT_NODE_MODULES=modules, PFRT_VERIFY_PASSES="1")
    ours_dir, ort_dir = os.path.join(tmp, f"{name}_ours"), os.path.join(tmp, f"{name}_ort")
    row = {"model": name, "family": family}
    ours, theirs, loads, ours_cpu, ort_cpu, before = [], [], [load_average()], [], [], []
    for _ in range(rounds):
        if baseline_env is not None:
            try:
                r = run_json([sys.executable, os.path.join(HERE, "pfrt_timer.py"), path, str(threads), str(runs),
                              str(warmup), ours_dir + "_baseline", inp], dict(env, **baseline_env), timeout)
                before += r["latencies_ms"]
            except Exception as e:  # noqa: BLE001
                row["status"] = f"baseline failed: {e}"
                return row
        try:
            r = run_json([sys.executable, os.path.join(HERE, "pfrt_timer.py"), path, str(threads), str(runs),
                          str(warmup), ours_dir, inp], env, timeout)
            ours += r["latencies_ms"]
            ours_cpu.append(r["cpu_ms"])
            row["fallback"] = fallback_ops(r.get("fallback", []))
        except subprocess.TimeoutExpired:
            row["status"] = f"PyFlameRT timed out ({timeout} s)"
            return row
        except Exception as e:  # noqa: BLE001 - recorded in the table
            row["status"] = f"PyFlameRT failed: {e}"
            return row
        try:
            o = run_json(["node", os.path.join(REPO, "tests", "tools", "ort_run.js"), path, ort_dir, inp,
                          "--threads", str(threads), "--time", str(runs), "--warmup", str(warmup)], env, timeout)
            theirs += o["latencies_ms"]
            ort_cpu.append(o["cpu_ms"])
        except Exception as e:  # noqa: BLE001
            row["status"] = f"ORT failed: {e}"
            return row
        loads.append(load_average())
    row["ours_p50"] = float(np.percentile(ours, 50))
    if before:
        row["before_p50"] = float(np.percentile(before, 50))
    row["ort_p50"] = float(np.percentile(theirs, 50))
    row["cpu_ratio"] = min(ours_cpu) / max(min(ort_cpu), 1e-9)
    row["load"] = (min(loads), max(loads))
    with open(os.path.join(ort_dir, "outputs.json")) as f:
        index = json.load(f)
    # By name: outputs.json is a JSON object, whose integer-like keys (detection models' "4129")
    # come back in numeric order, not in the graph's output order.
    names = [o.name for o in onnx.load(path, load_external_data=False).graph.output]
    err = 0.0
    for i, name in enumerate(names):
        err = max(err, rel_l2(np.load(os.path.join(ours_dir, f"{i}.npy")), np.load(os.path.join(ort_dir, index[name]))))
    row["rel_l2"] = err
    if all(not np.load(os.path.join(ort_dir, file)).any() for file in index.values()):
        row["status"] = "FAIL (ORT's outputs are all zero: nothing compared)"
    elif err > 1e-4:
        row["status"] = "FAIL (outputs differ)"
    elif row["fallback"]:
        row["status"] = "FAIL (reference kernels)"
    else:
        row["status"] = "pass"
    return row


def table(rows):
    baseline = any(r.get("before_p50") for r in rows)
    pre = "baseline p50 ms | baseline / ORT | " if baseline else ""
    lines = [f"| model | family | result | rel L2 | {pre}PyFlameRT p50 ms | ORT p50 ms | ratio | CPU time ratio | load avg | "
             "on reference kernels |", "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if baseline else "")]
    for r in rows:
        ours, ort = r.get("ours_p50"), r.get("ort_p50")
        fb = r.get("fallback")
        before = r.get("before_p50")
        base = ([f"{before:.1f}" if before else "-", f"{before / ort:.2f}x" if before and ort else "-"]
                if baseline else [])
        cells = [r["model"], r["family"], r["status"],
                 f"{r['rel_l2']:.1e}" if "rel_l2" in r else "-"] + base + [
                 f"{ours:.1f}" if ours else "-", f"{ort:.1f}" if ort else "-",
                 f"{ours / ort:.2f}x" if ours and ort else "-",
                 f"{r['cpu_ratio']:.2f}x" if "cpu_ratio" in r else "-",
                 f"{r['load'][0]:.1f}-{r['load'][1]:.1f}" if "load" in r else "-",
                 ", ".join(f"{op} x{n}" for op, n in sorted(fb.items())) if fb else ("none" if fb == {} else "-")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="")
    ap.add_argument("--family", default="classification,segmentation,detection")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the two runtimes")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per model and runtime")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--baseline", metavar="DIR", help="also time the pyflame_rt package in DIR in every round")
    ap.add_argument("--baseline-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment variable for the baseline's process only")
    args = ap.parse_args()
    baseline_env = None
    if args.baseline or args.baseline_env:
        baseline_env = dict(kv.split("=", 1) for kv in args.baseline_env)
        if args.baseline:
            baseline_env["PYTHONPATH"] = args.baseline
    families = args.family.split(",")
    names = args.models.split(",") if args.models else [n for n, (f, _) in ZOO.items() if f in families]
    cache = os.path.join(REPO, "build", "zoo")
    modules = ort_reference.ensure_ort()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path, why = export(name, cache)
            row = bench(name, path, args.threads, args.rounds, args.runs, args.warmup, tmp, modules, args.timeout,
                        baseline_env) if path else \
                {"model": name, "family": ZOO[name][0], "status": why}
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    ratios = [r["ours_p50"] / r["ort_p50"] for r in rows if r.get("status") == "pass"]
    geo = float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")
    cpu_ratios = [r["cpu_ratio"] for r in rows if r.get("status") == "pass"]
    cpu_geo = float(np.exp(np.mean(np.log(cpu_ratios)))) if cpu_ratios else float("nan")
    passed = sum(r.get("status") == "pass" for r in rows)
    text = (f"CPU: {cpu_model()}, {os.cpu_count()} cores, {args.threads} thread(s), {args.rounds} rounds x "
            f"{args.runs} timed runs" + (f", baseline {args.baseline or 'this build'} "
                                         f"{' '.join(args.baseline_env)}" if baseline_env is not None else "") +
            "\n\n" + table(rows) + f"\n\n{passed} of {len(rows)} pass; geometric-mean p50 "
            f"ratio over the passing models: {geo:.2f}x (CPU time: {cpu_geo:.2f}x)\n")
    print()
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
