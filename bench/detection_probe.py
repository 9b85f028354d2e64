#!/usr/bin/python3
"""Where do PyFlameRT and ONNX Runtime part ways on a detection model? Adds the tensors around
every data-dependent selection (the inputs and outputs of TopK, NonZero, GatherND and
NonMaxSuppression, and the outer-scope tensors an If's branches read: torchvision's batched NMS
sits in one) as graph outputs, runs the copy once in each runtime on the zoo's input and lists
each tensor's difference in graph order: the first arithmetic tensor beyond float noise is a
defect to narrow; a selection whose inputs agree and whose cut falls among equal scores is a tie.

    PYTHONPATH=build/python /usr/bin/python3 bench/detection_probe.py MODEL.onnx [--tensors a,b]
        [--feed TENSOR=FILE.npy ...] [--size 320] [--threads 1] [--keep DIR]

--tensors probes those tensors instead (to bisect an arithmetic difference). --feed starts both
runtimes from the same values of a tensor (say ORT's, kept by an earlier --keep run): what still
differs downstream is not that tensor's doing. The model's own outputs are always compared. One
run per runtime, in fresh processes. "!!" marks a float tensor beyond 1e-5 relative L2 or an
integer/bool tensor with any element different. docs/performance.md, "Detection mismatches",
has what it found.
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

import ort_reference  # noqa: E402

SELECTIONS = ("TopK", "NonZero", "GatherND", "NonMaxSuppression")

OURS = r"""
import sys, numpy as np, pyflame_rt as rt
model, out = sys.argv[1], sys.argv[2]
sess = rt.InferenceSession(model, rt.SessionOptions(num_threads=int(sys.argv[3])))
feeds = {spec.split("=", 1)[0]: np.load(spec.split("=", 1)[1]) for spec in sys.argv[4:]}
for i, o in enumerate(sess.run(None, feeds)):
    np.save(f"{out}/{i}.npy", o)
"""


def outer_reads(graph):
    """Names an If/Loop's branches read from the enclosing graph (not produced inside)."""
    names = set()
    for n in graph.node:
        for a in n.attribute:
            if a.type != onnx.AttributeProto.GRAPH:
                continue
            inner = {o for m in a.g.node for o in m.output} | {i.name for i in a.g.input}
            names |= {i for m in a.g.node for i in m.input if i and i not in inner}
            names |= outer_reads(a.g)
    return names


def selection_tensors(graph):
    names = []
    for n in graph.node:
        if n.op_type in SELECTIONS:
            names += [t for t in list(n.input) + list(n.output) if t]
        elif n.op_type in ("If", "Loop"):
            names += [t for t in n.output if t]
    names += sorted(outer_reads(graph))
    return list(dict.fromkeys(names))


def probe_model(path, tensors, dst, fed=None):
    """A copy of the model whose outputs are its own followed by TENSORS (in graph order); each
    tensor in FED becomes an input (its producer removed), so that both runtimes start there
    from the same values."""
    m = onnx.load(path)
    g = m.graph
    for name, file in (fed or {}).items():
        node = next(n for n in g.node if name in n.output)
        if len(node.output) != 1:
            raise SystemExit(f"--feed {name}: its producer {node.name} has {len(node.output)} outputs, expected 1")
        g.node.remove(node)
        value = np.load(file, mmap_mode="r")
        g.input.append(onnx.helper.make_tensor_value_info(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[value.dtype],
                                                          value.shape))
    order = {}
    for i, n in enumerate(g.node):
        for o in n.output:
            order.setdefault(o, i)
    produced = set(order)
    consts = {init.name for init in g.initializer} | {n.output[0] for n in g.node if n.op_type == "Constant"}
    own = [o.name for o in g.output]
    wanted = sorted((t for t in tensors if t in produced and t not in own and t not in consts), key=order.get)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    types = {v.name: v for v in inferred.graph.value_info}
    for t in wanted:
        if t in types:
            g.output.append(types[t])
        else:
            g.output.append(onnx.helper.make_empty_tensor_value_info(t))
    onnx.save(m, dst)
    return own + wanted, {t: order.get(t, len(g.node)) for t in own + wanted}


def compare(ours, theirs):
    """(kind, text, worst): worst is the relative L2 (float) or share of differing elements."""
    if ours.shape != theirs.shape:
        return "shape", f"shape {ours.shape} vs ORT {theirs.shape}", float("inf")
    if ours.size == 0:
        return "empty", "empty in both", 0.0
    if ours.dtype.kind == "f":
        a, b = ours.astype(np.float64), theirs.astype(np.float64)
        diff = np.abs(a - b)
        rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
        i = int(np.argmax(diff))
        return "float", (f"rel L2 {rel:.1e}, max |diff| {diff.flat[i]:.2e} at {np.unravel_index(i, a.shape)} "
                         f"(ours {a.flat[i]:.9g}, ORT {b.flat[i]:.9g})"), rel
    bad = int(np.count_nonzero(ours != theirs))
    first = np.flatnonzero((ours != theirs).ravel())
    where = f", first at flat {first[0]} (ours {ours.flat[first[0]]}, ORT {theirs.flat[first[0]]})" if bad else ""
    return "int", f"{bad}/{ours.size} elements differ{where}", bad / ours.size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--tensors", default="", help="comma-separated tensor names (default: around selections)")
    ap.add_argument("--size", type=int, default=320, help="the zoo's detection input: one 3 x SIZE x SIZE image")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--feed", action="append", default=[], metavar="TENSOR=FILE.npy",
                    help="start both runtimes from these values of TENSOR (e.g. ORT's, from an earlier --keep)")
    ap.add_argument("--keep", help="keep the probed model and both runtimes' outputs in this directory")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="detprobe_")
    os.makedirs(work, exist_ok=True)
    graph = onnx.load(args.model, load_external_data=False).graph
    tensors = args.tensors.split(",") if args.tensors else selection_tensors(graph)
    probed = os.path.join(work, "probe.onnx")
    fed = dict(spec.split("=", 1) for spec in args.feed)
    names, order = probe_model(args.model, tensors, probed, fed)
    x = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)[0]  # as bench/zoo.py
    inp = os.path.join(work, "input.npy")
    np.save(inp, x)
    ours_dir, ort_dir = os.path.join(work, "ours"), os.path.join(work, "ort")
    os.makedirs(ours_dir, exist_ok=True)
    feeds = [f"{graph.input[0].name}={inp}"] + [f"{k}={v}" for k, v in fed.items()]
    subprocess.run([sys.executable, "-c", OURS, probed, ours_dir, str(args.threads)] + feeds, check=True, timeout=1800)
    env = dict(os.environ, ORT_NODE_MODULES=ort_reference.ensure_ort())
    subprocess.run(["node", os.path.join(REPO, "tests", "tools", "ort_run.js"), probed, ort_dir] + feeds +
                   ["--threads", str(args.threads)], check=True, env=env, timeout=1800)
    with open(os.path.join(ort_dir, "outputs.json")) as f:
        index = json.load(f)
    producer = {o: n for n in graph.node for o in n.output}
    rows = []
    for i, name in enumerate(names):
        ours, theirs = np.load(os.path.join(ours_dir, f"{i}.npy")), np.load(os.path.join(ort_dir, index[name]))
        kind, text, worst = compare(ours, theirs)
        op = producer[name].op_type if name in producer else "output"
        rows.append((order[name], name, op, kind, text, worst))
    for _, name, op, kind, text, worst in sorted(rows):
        flag = "  " if worst <= (1e-5 if kind == "float" else 0) else "!!"
        print(f"{flag} {op:>17} {name}: {text}")
    print(f"(outputs kept in {work})" if args.keep else "", flush=True)


if __name__ == "__main__":
    main()
