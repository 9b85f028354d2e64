#!/usr/bin/python3
"""Times PyFlameRT on one model in a process of its own (so peak memory is the session's).

    PYTHONPATH=build/python /usr/bin/python3 bench/pfrt_timer.py MODEL THREADS RUNS WARMUP OUTDIR IN.npy...

PFRT_EXECUTION_MODE=parallel selects that execution mode; PFRT_MEMORY_POOL (default, arena,
custom) and PFRT_MEMORY_REUSE=0 set those session options (left at their defaults when unset);
PFRT_DISABLED_PASSES (comma-separated pass names) skips those passes, for a same-build A/B.
PFRT_TIMER_ASYNC=1 times each run as run_async and a wait for its callback: the run on the
engine's thread while the caller sleeps, as onnxruntime-node's `await session.run` runs it on a
libuv worker (the two calling patterns meet the scheduler differently on busy cores). Writes the outputs of the first run
as OUTDIR/<i>.npy and prints one JSON line:
{"latencies_ms": [...], "max_rss_kb": N, "idle_rss_kb": N, "cpu_ms": X, "runq_wait_ms": W, "fallback": [...]}
(cpu_ms: the process's CPU time per timed run, all threads; runq_wait_ms: the time its threads
were runnable but waiting for a core, per timed run (the kernel's schedstat): on a shared machine,
the part of the latency that is the scheduler's, not the runtime's; fallback: the session's
get_fallback_nodes() after the runs, run-time fallbacks included).
"""

import json
import os
import sys
import threading
import time

import numpy as np

import pyflame_rt as rt


def peak_rss_kb():
    """This process's peak resident memory (VmHWM). Not ru_maxrss: that one survives exec and
    so starts at the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def runq_wait_ns():
    """Nanoseconds this process's live threads have spent runnable but not running
    (/proc/self/task/*/schedstat, second field). ort_run.js reads the same for ONNX Runtime."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass  # a thread that ended meanwhile
    return total


def run_async_and_wait(sess, feed):
    done = threading.Event()
    failure = []

    def finished(outputs, _, err):
        if err:
            failure.append(err)
        done.set()

    sess.run_async(None, feed, finished, None)
    done.wait()
    if failure:
        raise RuntimeError(failure[0])


def main():
    model, threads, runs, warmup, outdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    idle = peak_rss_kb()
    mode = os.environ.get("PFRT_EXECUTION_MODE", "sequential")
    memory = {}
    if "PFRT_MEMORY_POOL" in os.environ:
        memory["memory_pool"] = os.environ["PFRT_MEMORY_POOL"]
    if "PFRT_MEMORY_REUSE" in os.environ:
        memory["enable_memory_reuse"] = os.environ["PFRT_MEMORY_REUSE"] != "0"
    if os.environ.get("PFRT_DISABLED_PASSES"):
        memory["disabled_passes"] = os.environ["PFRT_DISABLED_PASSES"].split(",")
    sess = rt.InferenceSession(model, rt.SessionOptions(num_threads=threads, execution_mode=mode, **memory))
    feed = {i.name: np.load(p) for i, p in zip(sess.get_inputs(), sys.argv[6:])}
    outputs = sess.run(None, feed)
    os.makedirs(outdir, exist_ok=True)
    for i, o in enumerate(outputs):
        np.save(os.path.join(outdir, f"{i}.npy"), o)
    for _ in range(warmup):
        sess.run(None, feed)
    asynchronous = os.environ.get("PFRT_TIMER_ASYNC") == "1"
    run = run_async_and_wait if asynchronous else (lambda s, f: s.run(None, f))
    for _ in range(warmup if asynchronous else 0):  # the engine's thread warmed too
        run(sess, feed)
    lat = []
    cpu0, wait0 = time.process_time(), runq_wait_ns()
    for _ in range(runs):
        t0 = time.perf_counter()
        run(sess, feed)
        lat.append((time.perf_counter() - t0) * 1e3)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / max(runs, 1)
    wait_ms = (runq_wait_ns() - wait0) / 1e6 / max(runs, 1)
    print(json.dumps({"latencies_ms": lat, "max_rss_kb": peak_rss_kb(),
                      "idle_rss_kb": idle, "cpu_ms": cpu_ms, "runq_wait_ms": wait_ms, "fallback": [str(f) for f in sess.get_fallback_nodes()]}))


if __name__ == "__main__":
    main()
