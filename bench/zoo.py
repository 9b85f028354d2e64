#!/usr/bin/python3
"""Zoo mode: torchvision classification, segmentation and detection models (random weights,
exported by torch 1.13 at opset 17) run in PyFlameRT and in ONNX Runtime side by side, outputs
compared by relative L2 error (pass: <= 1e-4 on every output). The table gives p50 latency of
both and their ratio, the ratio of CPU time per run (each runtime's lowest round mean; less
swayed than wall time when other jobs share the cores), the load average around each model,
and the op types our session ran on reference kernels (get_fallback_nodes(), run-time
fallbacks included): a model passes only when its outputs match and nothing runs on the
reference path. A detection model whose outputs differ element-wise may "pass as a set": at
least 99% of ORT's detections have one of ours with the same label, score and box
(detections_matched: random weights give many equal scores, which the two runtimes order
differently); masks and keypoints, which follow their boxes' order, are then compared pair by
pair over the matched detections, and the status says how many are within 1e-4 (relative L2):
a keypoint is an argmax over a heatmap resized to ceil(box width), so a near-tie there moves it
(docs/performance.md, "Detection mismatches").
A single-output model whose outputs differ from ORT's by more than 1e-4 (but at most 1e-2) is
measured against the truth, torch's float64 run of the same model and input: it "passes at
float32 noise" when ours is within 1.5x of the larger of ORT's and torch float32's own error
(deep random-weight segmentation nets, where torch float32 itself misses float64 by 1e-4).
Prints a markdown table headed by the CPU model.

    PYTHONPATH=build/python /usr/bin/python3 bench/zoo.py [--models regnet_y_400mf,resnet18]
        [--family classification,segmentation,detection] [--threads 1] [--rounds 2] [--runs 5]
        [--markdown FILE] [--all] [--baseline DIR] [--baseline-env KEY=VALUE ...]

--baseline DIR also times the pyflame_rt package in DIR (another build's build/python) in every
round, between ours and ORT; --baseline-env sets variables for that baseline process only (alone,
it makes the baseline this build under them: `--baseline-env PFRT_DISABLED_PASSES=some_pass`
is a same-build A/B of one pass). The table then gains the baseline's p50 and its ratio to ORT.

By default a representative set of 19 models (ZOO); --all adds every model torchvision 0.14
lists for the families (104 with the three; the largest take minutes per run on 2 cores).
Exported models are cached under build/zoo-v2/ (never in git); an export that fails is reported
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
import host  # noqa: E402

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

FAMILY_MODULES = {"classification": "torchvision.models", "segmentation": "torchvision.models.segmentation",
                  "detection": "torchvision.models.detection"}


def input_shape(name, family):
    """The input a model of the whole zoo (--all) gets: 224x224 for classification and
    segmentation (Inception v3 needs 299), one 320x320 image for detection (the model resizes)."""
    if family == "detection":
        return (1, 3, 320, 320)
    return (1, 3, 299, 299) if name == "inception_v3" else (1, 3, 224, 224)


def every_model(families):
    """Every model torchvision lists for the families (torchvision.models.list_models), in a
    child process: importing torch here would slow every run this script starts."""
    code = ("import json, sys, importlib, torchvision\n"
            "print(json.dumps({f: torchvision.models.list_models(module=importlib.import_module(m))"
            " for f, m in json.loads(sys.argv[1]).items()}))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps({f: FAMILY_MODULES[f] for f in families})],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    listed = json.loads(out.strip().splitlines()[-1])
    return {name: (family, input_shape(name, family)) for family in families for name in listed[family]}


# Builds `model` (random weights, calibrated BatchNorm) and `x` from name, family and shape; the
# same seed gives the same weights, so the float64 reference below rebuilds what was exported.
MODEL_SCRIPT = r"""
import sys, torch, torchvision
name, family, shape = sys.argv[1], sys.argv[2], eval(sys.argv[3])
torch.manual_seed(0)
ns = {"classification": torchvision.models, "segmentation": torchvision.models.segmentation,
      "detection": torchvision.models.detection}[family]
kwargs = {"weights": None}
if family == "detection":
    # No score threshold: with random weights every box scores low, and both runtimes would
    # return nothing to compare.
    kwargs["weights_backbone"] = None
    kwargs["box_score_thresh" if "rcnn" in name else "score_thresh"] = 0.0  # R-CNNs name it box_
if family == "segmentation":
    kwargs.update(weights_backbone=None, aux_loss=False)
model = getattr(ns, name)(**kwargs).eval()
# A Linear initialised to zero (ViT's head) makes the output its bias whatever the input: the
# comparison would test nothing. Such weights get random values instead.
for m in model.modules():
    if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
        torch.nn.init.normal_(m.weight, std=0.02)
x = torch.randn(*shape)
# BatchNorm statistics from forward passes, as training would leave them: with the defaults
# (mean 0, var 1) activations decay or blow up through deep stacks (GoogLeNet's output was the
# same for every input, its classifier's bias), and the comparison tests little.
norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
if norms:
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration passes
        m.train()
    with torch.no_grad():
        for _ in range(3):
            batch = torch.randn(2, *shape[1:])
            model([batch[0], batch[1]] if family == "detection" else batch)
    model.eval()
"""

EXPORT_SCRIPT = MODEL_SCRIPT + r"""
path = sys.argv[4]
if family == "detection":
    torch.onnx.export(model, ([x[0]],), path, opset_version=17, input_names=["input"])
else:
    torch.onnx.export(model, x, path, opset_version=17, input_names=["input"])
"""

# The model's output on the .npy input in float32 and in float64 (torch's CPU kernels), saved as
# OUT.f32.npy and OUT.f64.npy: the second is the truth both runtimes are measured against when
# they differ from each other by more than 1e-4 (float32_noise).
F64_SCRIPT = MODEL_SCRIPT + r"""
import numpy as np
inp, out = sys.argv[4], sys.argv[5]
x = torch.from_numpy(np.load(inp))
with torch.no_grad():
    pick = (lambda y: y["out"]) if family == "segmentation" else (lambda y: y)
    np.save(out + ".f32.npy", pick(model(x)).numpy())
    np.save(out + ".f64.npy", pick(model.double()(x.double())).numpy())
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


def detection_outputs(arrays):
    """(boxes [N, 4] float, scores [N] float, labels [N] int) among a detection model's outputs,
    whatever their order (torchvision's dict order differs by model: RetinaNet's is boxes,
    scores, labels; Mask R-CNN's boxes, labels, scores, masks); None if they are not there."""
    arrays = [np.asarray(a) for a in arrays]
    boxes = next((a for a in arrays if a.ndim == 2 and a.shape[1] == 4 and a.dtype.kind == "f"), None)
    if boxes is None:
        return None
    n = boxes.shape[0]
    scores = next((a for a in arrays if a.shape == (n,) and a.dtype.kind == "f"), None)
    labels = next((a for a in arrays if a.shape == (n,) and a.dtype.kind in "iu"), None)
    return None if scores is None or labels is None else (boxes, scores, labels)


def detections_matched(ours, theirs):
    """How many of ORT's detections have one of ours with the same label, score within 1e-4 and
    box within 1e-4 of the image's scale, each of ours used once; and how many ORT has. With
    random weights many scores are equal to 1e-6, and the two runtimes' last-bit differences
    reorder them: the same detections in another order fail an element-wise comparison."""
    a, b = detection_outputs(ours), detection_outputs(theirs)
    if a is None or b is None:
        return 0, 1, []
    (boxes, scores, labels), (rb, rs, rl) = a, b
    box_tol = 1e-4 * max(1.0, float(np.abs(rb).max(initial=0.0)))
    used = np.zeros(len(boxes), bool)
    pairs = []  # (ORT's index, ours)
    for i in range(len(rb)):
        ok = ~used & (labels == rl[i]) & (np.abs(scores - rs[i]) <= 1e-4 * max(1.0, abs(float(rs[i]))))
        ok &= np.abs(boxes - rb[i]).max(axis=1, initial=0.0) <= box_tol
        j = np.flatnonzero(ok)
        if j.size:
            used[j[0]] = True
            pairs.append((i, int(j[0])))
    return len(pairs), max(len(rb), len(boxes)), pairs


def per_detection_agreement(ours, theirs, pairs):
    """For the outputs beyond boxes, scores and labels with one row per detection (keypoints,
    their scores, masks): how many matched detections have every such row within 1e-4
    (relative L2) of ORT's, and the worst row's error; None when there are no such outputs."""
    if not pairs:
        return None
    n = len(detection_outputs(theirs)[0])
    extra = [(np.asarray(o), np.asarray(t)) for o, t in zip(ours, theirs)
             if np.asarray(t).ndim >= 2 and np.asarray(t).shape[0] == n and np.asarray(t).shape[1:] != (4,)
             and np.asarray(o).shape == np.asarray(t).shape]
    if not extra:
        return None
    worst = np.zeros(len(pairs))
    for o, t in extra:
        for k, (i, j) in enumerate(pairs):
            worst[k] = max(worst[k], rel_l2(o[j], t[i]))
    return int(np.count_nonzero(worst <= 1e-4)), len(pairs), float(worst.max())


def float32_noise(name, path, inp, ours, ort, cache):
    """When ours and ORT differ by more than 1e-4, how far each is from the truth: the model run
    by torch in float64 on the same input (cached beside the export). Deep random-weight
    segmentation nets amplify float32 rounding; there torch's own float32 misses its float64 by
    1e-4 too (DeepLabV3-ResNet50: 1.1e-4), and no float32 runtime can be within 1e-4 of another.
    Returns (ours, ORT, torch float32) relative L2 against float64, or None when no reference
    could be made or the rebuilt model is not the exported one (torch float32 vs ORT > 1e-3)."""
    family, shape = ZOO[name]
    ref = os.path.join(cache, f"{name}.reference")  # the input is always the same (seed 0)
    if not os.path.exists(ref + ".f64.npy"):
        r = subprocess.run([sys.executable, "-c", F64_SCRIPT, name, family, repr(shape), inp, ref],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            return None
    f32, f64 = np.load(ref + ".f32.npy"), np.load(ref + ".f64.npy")
    if rel_l2(f32, ort) > 1e-3:
        return None
    return rel_l2(ours, f64), rel_l2(ort, f64), rel_l2(f32, f64)


def load_average():
    return os.getloadavg()[0]


def fallback_ops(entries):
    """{op_type: count} of get_fallback_nodes() entries ("OpType 'node': reason")."""
    ops = {}
    for e in entries:
        op = e.split(" '", 1)[0]
        ops[op] = ops.get(op, 0) + 1
    return ops


def bench(name, path, threads, rounds, runs, warmup, tmp, modules, timeout, cache, baseline_env=None):
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
    for i, out_name in enumerate(names):
        err = max(err, rel_l2(np.load(os.path.join(ours_dir, f"{i}.npy")), np.load(os.path.join(ort_dir, index[out_name]))))
    row["rel_l2"] = err
    as_set = None
    if family == "detection" and err > 1e-4:
        ours_out = [np.load(os.path.join(ours_dir, f"{i}.npy")) for i in range(len(names))]
        ort_out = [np.load(os.path.join(ort_dir, index[n])) for n in names]
        as_set = detections_matched(ours_out, ort_out)
        extras = per_detection_agreement(ours_out, ort_out, as_set[2])
    same_set = as_set is not None and as_set[0] >= 0.99 * as_set[1]
    set_note = f"{as_set[0]}/{as_set[1]} detections matched" if as_set else ""
    # A single-output model that misses 1e-4 by a little is measured against float64: it passes
    # "at float32 noise" only if ours is no further from the truth than 1.5x the worse of ORT
    # and torch's own float32 (the two errors are independent: ours vs ORT is about their sum).
    noise = None
    if family != "detection" and 1e-4 < err <= 1e-2 and len(names) == 1:
        noise = float32_noise(name, path, inp, np.load(os.path.join(ours_dir, "0.npy")),
                              np.load(os.path.join(ort_dir, index[names[0]])), cache)
    noise_ok = noise is not None and noise[0] <= 1.5 * max(noise[1], noise[2])
    noise_note = (f"vs float64: ours {noise[0]:.1e}, ORT {noise[1]:.1e}, torch float32 {noise[2]:.1e}"
                  if noise else "")
    if as_set and extras:
        set_note += f"; masks/keypoints of {extras[0]}/{extras[1]} within 1e-4, worst {extras[2]:.1e}"
    if all(not np.load(os.path.join(ort_dir, file)).any() for file in index.values()):
        row["status"] = "FAIL (ORT's outputs are all zero: nothing compared)"
    elif err > 1e-4 and not same_set and not noise_ok:
        row["status"] = "FAIL (outputs differ" + (f"; {set_note})" if as_set else f"; {noise_note})" if noise else ")")
    elif row["fallback"]:
        row["status"] = "FAIL (reference kernels" + (f"; outputs as a set: {set_note})" if as_set else ")")
    elif err > 1e-4:
        row["status"] = (f"pass as a set ({set_note}; order differs)" if same_set else
                         f"pass at float32 noise ({noise_note})")
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
    ap.add_argument("--all", action="store_true",
                    help="every model torchvision lists for the families, not the representative set")
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
    if args.all:
        ZOO.update({n: e for n, e in every_model(families).items() if n not in ZOO})
    names = args.models.split(",") if args.models else [n for n, (f, _) in ZOO.items() if f in families]
    cache = os.path.join(REPO, "build", "zoo-v2")  # v2: calibrated BatchNorm, no detection score threshold
    modules = ort_reference.ensure_ort()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path, why = export(name, cache)
            row = bench(name, path, args.threads, args.rounds, args.runs, args.warmup, tmp, modules, args.timeout,
                        cache, baseline_env) if path else \
                {"model": name, "family": ZOO[name][0], "status": why}
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    passing = [r for r in rows if r.get("status", "").startswith("pass")]
    ratios = [r["ours_p50"] / r["ort_p50"] for r in passing]
    geo = float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")
    cpu_ratios = [r["cpu_ratio"] for r in passing]
    cpu_geo = float(np.exp(np.mean(np.log(cpu_ratios)))) if cpu_ratios else float("nan")
    passed = len(passing)
    text = (f"CPU: {host.describe()}, {args.threads} thread(s), {args.rounds} rounds x "
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
