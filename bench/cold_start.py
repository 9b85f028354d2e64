#!/usr/bin/python3
"""Cold start: a new process to its first result, PyFlameRT (warm compile cache) beside ONNX
Runtime (onnxruntime-node: session creation + first run), on ResNet-50 and a small CNN.

    PYTHONPATH=build/python /usr/bin/python3 bench/cold_start.py [--runs 5] [--models resnet50,tiny_cnn]

Each sample is a fresh process. Our clock starts just before `import pyflame_rt` (the
interpreter's own start and numpy's import are not counted, as the target says) and stops when
the first run has returned; ONNX Runtime's starts just before require('onnxruntime-node').
Before the timed samples one process fills the cache (a miss: import, passes, compile, store)
and its figures are printed too. Prints the medians and the phases of our time: import,
session creation (split by the session into cache lookup/load, passes, compile) and first run,
and the same in CPU time of the process (all threads), which a loaded machine changes least.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

MODELS = {
    "resnet50": ("build/models/resnet50.onnx", "input", (1, 3, 224, 224)),
    "tiny_cnn": ("examples/models/tiny_cnn.onnx", None, None),  # input read from the model
}

CHILD = r"""
import json, sys, time
import numpy as np
path, cache, threads, shape = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c0, t0 = time.process_time(), time.perf_counter()
import pyflame_rt as rt
c1, t1 = time.process_time(), time.perf_counter()
opts = rt.SessionOptions()
opts.intra_op_num_threads = threads
if cache:
    opts.compile_cache_dir = cache
sess = rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
c2, t2 = time.process_time(), time.perf_counter()
inp = sess.get_inputs()[0]
dims = [int(d) for d in shape.split(",")] if shape else [d if isinstance(d, int) else 1 for d in inp.shape]
x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
out = sess.run(None, {inp.name: x})
c3, t3 = time.process_time(), time.perf_counter()
phases = sess._native.startup_phases() if hasattr(sess._native, "startup_phases") else {}
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "session_ms": (t2 - t1) * 1e3, "first_run_ms": (t3 - t2) * 1e3,
                  "total_ms": (t3 - t0) * 1e3, "phases": phases,
                  "cpu": {"import_ms": (c1 - c0) * 1e3, "session_ms": (c2 - c1) * 1e3,
                          "first_run_ms": (c3 - c2) * 1e3, "total_ms": (c3 - c0) * 1e3},
                  "from_cache": bool(sess.compiled_from_cache), "checksum": float(np.abs(out[0]).sum())}))
"""

ORT_CHILD = r"""
const path = require('path');
const [model, modules, shapeArg, threads] = process.argv.slice(1);
const t0 = process.hrtime.bigint();
const ort = require(path.join(modules, 'onnxruntime-node'));
const t1 = process.hrtime.bigint();
(async () => {
  const sess = await ort.InferenceSession.create(model, {executionProviders: ['cpu'], intraOpNumThreads: Number(threads)});
  const t2 = process.hrtime.bigint();
  const meta = sess.inputNames[0];
  const dims = shapeArg.split(',').map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; ++i) data[i] = Math.sin(i);
  const out = await sess.run({[meta]: new ort.Tensor('float32', data, dims)});
  const t3 = process.hrtime.bigint();
  const ms = (a, b) => Number(b - a) / 1e6;
  console.log(JSON.stringify({import_ms: ms(t0, t1), session_ms: ms(t1, t2), first_run_ms: ms(t2, t3),
                              total_ms: ms(t0, t3)}));
})();
"""


def model_input_shape(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    inp = m.graph.input[0]
    return [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]


PYTHONPATH = os.path.join(REPO, "build", "python")


THREADS = 0


def run_ours(path, cache, shape):
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    out = subprocess.run(["/usr/bin/python3", "-c", CHILD, path, cache, str(THREADS), ",".join(map(str, shape))],
                         env=env, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ort(path, shape):
    modules = os.environ.get("ORT_NODE_MODULES", os.path.join(REPO, "build", "npm", "node_modules"))
    out = subprocess.run(["node", "-e", ORT_CHILD, path, modules, ",".join(map(str, shape)), str(THREADS)],
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(samples, key):
    return statistics.median(s[key] for s in samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--models", default="resnet50,tiny_cnn")
    ap.add_argument("--cache-dir", default="", help="default: a fresh temporary directory")
    ap.add_argument("--pythonpath", default=PYTHONPATH, help="the pyflame_rt build to time (another build: before/after)")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads of both runtimes; 0 = their default")
    args = ap.parse_args()
    globals()["PYTHONPATH"] = args.pythonpath
    globals()["THREADS"] = args.threads
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    load = os.getloadavg()[0]
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {platform.platform()}; load average {load:.1f}; "
          f"threads {args.threads or 'default'}")
    for name in args.models.split(","):
        rel, _, shape = MODELS[name]
        path = os.path.join(REPO, rel)
        if name == "resnet50" and not os.path.exists(path):
            import export_models
            export_models.export(os.path.dirname(path), ["resnet50"])
        shape = list(shape) if shape else model_input_shape(path)
        cache = args.cache_dir or tempfile.mkdtemp(prefix="pfrt-cold-")
        try:
            no_cache = run_ours(path, "", shape)
            fill = run_ours(path, cache, shape)
            ours, ort = [], []
            for _ in range(args.runs):  # interleaved, so drifts of the machine hit both
                ours.append(run_ours(path, cache, shape))
                ort.append(run_ort(path, shape))
        finally:
            if not args.cache_dir:
                shutil.rmtree(cache, ignore_errors=True)
        hits = sum(s["from_cache"] for s in ours)
        print(f"\n{name} {shape}: {args.runs} fresh processes each, medians (ms)")
        print(f"  {'':28s} {'import':>8s} {'session':>8s} {'1st run':>8s} {'total':>8s}")
        rows = [("pyflame_rt, no cache", [no_cache]), ("pyflame_rt, cache miss (fill)", [fill]),
                (f"pyflame_rt, warm cache ({hits}/{len(ours)} hits)", ours), ("onnxruntime-node", ort)]
        for label, s in rows:
            print(f"  {label:28s} {median_of(s, 'import_ms'):8.1f} {median_of(s, 'session_ms'):8.1f} "
                  f"{median_of(s, 'first_run_ms'):8.1f} {median_of(s, 'total_ms'):8.1f}")
        # CPU time of the process (all threads): what a shared, loaded machine changes least.
        cpu_rows = [s["cpu"] for s in ours if "cpu" in s]
        if cpu_rows:
            print(f"  {'  same, CPU ms (all threads)':28s} {median_of(cpu_rows, 'import_ms'):8.1f} "
                  f"{median_of(cpu_rows, 'session_ms'):8.1f} {median_of(cpu_rows, 'first_run_ms'):8.1f} "
                  f"{median_of(cpu_rows, 'total_ms'):8.1f}")
        phases = {}
        for s in ours:
            for k, v in s.get("phases", {}).items():
                phases.setdefault(k, []).append(v)
        if phases:
            print("  warm-cache session phases: " +
                  ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in phases.items()))
        if fill.get("phases"):
            print("  cache-miss session phases: " + ", ".join(f"{k} {v:.1f}" for k, v in fill["phases"].items()))
        sums = {round(s["checksum"], 2) for s in ours + [no_cache, fill]}
        print(f"  output |sum| across processes: {sorted(sums)}")


if __name__ == "__main__":
    main()
