#!/usr/bin/python3
"""Benchmarks PyFlameRT against ONNX Runtime (onnxruntime-node) side by side, interleaved, on
ResNet-50, MobileNetV2, EfficientNet-B0, a 4-layer d=256 transformer encoder (seq 128) and a
2-layer GRU, a 1-D audio embedding model (audio_tdnn) and a small tabular MLP (mlp), at 1 and 2 threads, after warm-up. Prints p50/p99 latency of both, their ratio,
peak resident memory and the max error of our outputs against ONNX Runtime's.

    make bench            (or: PYTHONPATH=build/python /usr/bin/python3 bench/run_bench.py)
    options: --models resnet50,encoder --threads 1,2 --rounds 4 --runs 10 --markdown FILE
             --background 2     contention mode: two busy processes run during the measurement
             --ours-env K=V     an environment variable for our timer only (compare policies)
             --baseline DIR     also time the pyflame_rt package in DIR (an earlier build's
                                build/python, or this one: an A/B of --ours-env) in the same
                                rounds, without --ours-env: before/after columns
             --baseline-env K=V an environment variable for the baseline's timer only
                                (PFRT_ADAPT_THREADS=0: this build without the adaptation)

Each timing round runs both runtimes in fresh processes, one after the other, so drifts of
the machine hit both; peak memory is each process's maximum RSS minus its RSS before loading
the model (the Python or Node.js runtime itself).

Contention mode (--background N): N busy loops (one Python process each, pinned to nothing)
run for the whole measurement, so both runtimes meet the same fixed load; the table adds the
1-minute load average seen around each model, and splits each runtime's latency into its CPU
time and the time its threads waited runnable for a core (schedstat): a runtime that waits
longer for the same CPU time lost to the scheduler, not to its kernels. Other jobs on a shared
machine add load of their own: compare the ratios (ours / ORT measured in the same rounds).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

import export_models  # noqa: E402
import ort_reference  # noqa: E402
import host  # noqa: E402  (bench/ is sys.path[0])

INPUTS = {
    "resnet50": [(1, 3, 224, 224)],
    "mobilenet_v2": [(1, 3, 224, 224)],
    "efficientnet_b0": [(1, 3, 224, 224)],
    "encoder": [(1, 128, 256)],
    "gru": [(1, 50, 64), (2, 1, 128)],
    "audio_tdnn": [(1, 80, 200)],
    "mlp": [(1, 64)],
}
# Models that run in tens of microseconds take this many times --runs and --warmup: ten runs of
# 15 us sit inside the first milliseconds of a process (ORT's p50 over 10 runs was 0.18 ms
# against 0.02 over 2,000).
RUNS_SCALE = {"mlp": 50}
DEFAULT_MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0", "encoder", "gru", "audio_tdnn", "mlp"]


def run_json(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {r.returncode}:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def ort_idle_rss_kb(modules):
    script = (f"require({json.dumps(os.path.join(modules, 'onnxruntime-node'))});"
              "const m = /VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'latin1'));"
              "console.log(JSON.stringify({rss: Number(m[1])}))")
    return json.loads(subprocess.run(["node", "-e", script], check=True, capture_output=True, text=True).stdout)["rss"]


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Background:
    """N busy loops for the duration of a `with` block: the fixed load of contention mode.
    Each is a Python process spinning in a loop; they are stopped by their own pids."""

    def __init__(self, n):
        self.n, self.procs = n, []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        if self.n:
            time.sleep(1.0)  # let the scheduler see them before the first timing
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait(timeout=30)
        return False


def bench_model(name, path, threads, rounds, runs, warmup, tmp, modules, ort_idle, mode="sequential",
                ours_env=None, baseline=None, baseline_env=None):
    runs, warmup = runs * RUNS_SCALE.get(name, 1), warmup * RUNS_SCALE.get(name, 1)
    rng = np.random.default_rng(0)
    inputs = []
    for i, shape in enumerate(INPUTS[name]):
        p = os.path.join(tmp, f"{name}_in{i}.npy")
        np.save(p, rng.standard_normal(shape).astype(np.float32))
        inputs.append(p)
    env = dict(os.environ, ORT_NODE_MODULES=modules, PFRT_EXECUTION_MODE=mode)
    our_env = dict(env, **(ours_env or {}))
    ours, theirs, ours_rss, ort_rss, before = [], [], [], [], []
    sched = {"ours_cpu": [], "ort_cpu": [], "ours_wait": [], "ort_wait": []}  # per round, ms per run
    loads = [load_average()]
    ort_out = os.path.join(tmp, f"{name}_ort")
    our_out = os.path.join(tmp, f"{name}_ours")
    for _ in range(rounds):
        r = run_json([sys.executable, os.path.join(HERE, "pfrt_timer.py"), path, str(threads), str(runs),
                      str(warmup), our_out] + inputs, env=our_env)
        ours += r["latencies_ms"]
        ours_rss.append(r["max_rss_kb"] - r["idle_rss_kb"])
        sched["ours_cpu"].append(r["cpu_ms"])
        sched["ours_wait"].append(r["runq_wait_ms"])
        if baseline:
            b = run_json([sys.executable, os.path.join(HERE, "pfrt_timer.py"), path, str(threads), str(runs),
                          str(warmup), our_out + "_baseline"] + inputs,
                         env=dict(env, PYTHONPATH=baseline, **(baseline_env or {})))
            before += b["latencies_ms"]
        o = run_json(["node", os.path.join(REPO, "tests", "tools", "ort_run.js"), path, ort_out] + inputs +
                     ["--threads", str(threads), "--time", str(runs), "--warmup", str(warmup),
                      "--execution-mode", mode], env=env)
        theirs += o["latencies_ms"]
        ort_rss.append(o["max_rss_kb"] - ort_idle)
        sched["ort_cpu"].append(o["cpu_ms"])
        sched["ort_wait"].append(o["runq_wait_ms"])
        loads.append(load_average())
    with open(os.path.join(ort_out, "outputs.json")) as f:
        index = json.load(f)
    err = 0.0
    for i, file in enumerate(index.values()):
        ref = np.load(os.path.join(ort_out, file)).astype(np.float64)
        got = np.load(os.path.join(our_out, f"{i}.npy")).astype(np.float64)
        err = max(err, float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12)))
    return {
        "model": name, "threads": threads,
        "ours_p50": percentile(ours, 50), "ours_p99": percentile(ours, 99),
        "ort_p50": percentile(theirs, 50), "ort_p99": percentile(theirs, 99),
        "ours_mb": max(ours_rss) / 1024, "ort_mb": max(ort_rss) / 1024, "max_rel_err": err,
        "load": (min(loads), max(loads)),
        **{k: float(np.median(v)) for k, v in sched.items()},
        "before_p50": percentile(before, 50) if before else None,
        "before_p99": percentile(before, 99) if before else None,
    }


def table(rows, contention=False):
    """Markdown rows; under contention the load average replaces the peak-memory column, and two
    columns split the latency (medians over the rounds, ms per run, ours / ORT): CPU time and the
    time the threads waited runnable for a core (the scheduler's share, not the runtime's). With a
    baseline (--baseline) its p50 and its ratio to ORT's come first, measured in the same rounds."""
    extra = "load avg | CPU ms/run (ours / ORT) | run-queue wait ms/run (ours / ORT)" if contention else \
        "peak MB (ours / ORT)"
    baseline = any(r.get("before_p50") is not None for r in rows)
    pre = "baseline p50 ms | baseline / ORT | " if baseline else ""
    head = (f"| model | threads | {pre}PyFlameRT p50 ms | ORT p50 ms | p50 ratio | PyFlameRT p99 ms | ORT p99 ms | "
            f"p99 ratio | {extra} | max rel err |")
    lines = [head, "|" + "---|" * ((12 if baseline else 10) + (2 if contention else 0))]
    for r in rows:
        cell = (f"{r['load'][0]:.1f}-{r['load'][1]:.1f} | {r['ours_cpu']:.2f} / {r['ort_cpu']:.2f} | "
                f"{r['ours_wait']:.2f} / {r['ort_wait']:.2f}" if contention else
                f"{r['ours_mb']:.0f} / {r['ort_mb']:.0f}")
        b = f"{r['before_p50']:.2f} | {r['before_p50'] / r['ort_p50']:.2f}x | " if baseline else ""
        lines.append(f"| {r['model']} | {r['threads']} | {b}{r['ours_p50']:.2f} | {r['ort_p50']:.2f} | "
                     f"{r['ours_p50'] / r['ort_p50']:.2f}x | {r['ours_p99']:.2f} | {r['ort_p99']:.2f} | "
                     f"{r['ours_p99'] / r['ort_p99']:.2f}x | {cell} | {r['max_rel_err']:.1e} |")
    return "\n".join(lines)




def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--execution-mode", default="sequential", choices=["sequential", "parallel"],
                    help="both runtimes' execution mode (parallel: independent branches at once)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--background", type=int, default=0,
                    help="contention mode: this many busy processes run during the measurement")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also time the pyflame_rt package in DIR (e.g. an earlier build's build/python) in every round")
    ap.add_argument("--ours-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment variable for PyFlameRT's timer only (e.g. OMP_WAIT_POLICY=passive)")
    ap.add_argument("--baseline-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment variable for the baseline's timer only (with --baseline)")
    args = ap.parse_args()
    ours_env = dict(kv.split("=", 1) for kv in args.ours_env)
    baseline_env = dict(kv.split("=", 1) for kv in args.baseline_env)
    def show(rows):
        return table(rows, contention=args.background > 0)

    names = args.models.split(",")
    paths = export_models.export(os.path.join(REPO, "build", "models"), names)
    modules = ort_reference.ensure_ort()
    ort_idle = ort_idle_rss_kb(modules)
    rows = []
    start = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp, Background(args.background):
        for threads in [int(t) for t in args.threads.split(",")]:
            for name in names:
                rows.append(bench_model(name, paths[name], threads, args.rounds, args.runs, args.warmup, tmp,
                                        modules, ort_idle, args.execution_mode, ours_env, args.baseline, baseline_env))
                print(show(rows[-1:]).splitlines()[-1], flush=True)
    text = (f"CPU: {host.describe()}, execution mode {args.execution_mode}, "
            f"{start}-{time.strftime('%H:%M', time.gmtime())} UTC")
    if args.background:
        text += f", {args.background} busy background processes"
    if args.baseline:
        text += f", baseline {args.baseline}" + "".join(f" {k}={v}" for k, v in baseline_env.items())
    if ours_env:
        text += ", ours with " + " ".join(f"{k}={v}" for k, v in ours_env.items())
    text += "\n\n" + show(rows)
    print()
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
