#!/usr/bin/python3
"""Benchmarks the actor engine against direct session.run() baselines, side by side:

From Python:
1. overhead: stream.process() and batcher.run (batch size 1) over a direct run() of the same
   chunk, interleaved call by call (p50/p99 of each and of the difference);
2. batching: tiny_cnn under 32 Python client threads, unbatched against the batching actor.
From C++ (build/bin/pyflame-bench-actors, no GIL in the way; see bench/actor_bench.cpp):
3. hop: one actor hop (a one-stage pipeline) and the batcher's two hops over direct run(),
   on a two-node model (the hop alone) and on tiny_cnn;
4. chain: three-stage pipelines (equal stages; detect -> crop -> embed; tiny_cnn cut into 3
   partitions) against their slowest stage alone;
5. batching: the classic small CIFAR-10 CNN and tiny_cnn under 32 C++ client threads,
   unbatched against the batcher with one and with two device actors.

    make bench-actors   (or: PYTHONPATH=build/python /usr/bin/python3 bench/bench_actors.py)
"""
import argparse
import os
import platform
import subprocess
import sys
import threading
import time

import numpy as np

import pyflame_rt as rt

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODELS = os.path.join(REPO, "examples", "models")
NATIVE_BENCH = os.path.join(REPO, "build", "bin", "pyflame-bench-actors")


def pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def overhead(runs):
    sess = rt.InferenceSession(os.path.join(MODELS, "tiny_gru.onnx"))
    chunk = np.random.default_rng(0).standard_normal((1, 25, 40)).astype(np.float32)
    h = np.zeros((1, 1, 64), np.float32)
    stream = sess.create_stream()
    batcher = sess.create_batcher(max_batch_size=1, batch_timeout_ms=0)
    direct, streamed, hopped = [], [], []
    for _ in range(50):  # warm-up
        sess.run(None, {"features": chunk, "h": h})
        stream.process(chunk)
        batcher.run(None, {"features": chunk, "h": h})
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {"features": chunk, "h": h})
        t1 = time.perf_counter()
        stream.process(chunk)
        t2 = time.perf_counter()
        batcher.run(None, {"features": chunk, "h": h})
        t3 = time.perf_counter()
        direct.append((t1 - t0) * 1e6)
        streamed.append((t2 - t1) * 1e6)
        hopped.append((t3 - t2) * 1e6)
    batcher.close()
    print("\n## Overhead over a direct run() (tiny_gru, 25-frame chunk), microseconds")
    print("| path | p50 | p99 | p50 - direct p50 | p99 - direct p99 |")
    print("|---|---|---|---|---|")
    d50, d99 = pct(direct, 50), pct(direct, 99)
    print(f"| direct run() | {d50:.1f} | {d99:.1f} | | |")
    for name, vals in (("stream.process()", streamed), ("batching actor hop (batch 1)", hopped)):
        print(f"| {name} | {pct(vals, 50):.1f} | {pct(vals, 99):.1f} | {pct(vals, 50) - d50:+.1f} | "
              f"{pct(vals, 99) - d99:+.1f} |")


def batching(clients, per_client, timeout_ms):
    sess = rt.InferenceSession(os.path.join(MODELS, "tiny_cnn.onnx"))
    image = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    batcher = sess.create_batcher(max_batch_size=32, batch_timeout_ms=timeout_ms)

    def drive(call):
        lat = []

        def client():
            for _ in range(per_client):
                t0 = time.perf_counter()
                call()
                lat.append((time.perf_counter() - t0) * 1e3)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return clients * per_client / (time.perf_counter() - t0), lat

    for _ in range(20):
        sess.run(None, {"image": image})
        batcher.run(None, {"image": image})
    rows = []
    for _ in range(2):  # interleaved rounds
        rows.append(("unbatched run()",) + drive(lambda: sess.run(None, {"image": image})))
        rows.append(("batching actor",) + drive(lambda: batcher.run(None, {"image": image})))
    stats = batcher.stats()
    batch32 = np.repeat(image, 32, axis=0)
    for _ in range(5):
        sess.run(None, {"image": batch32})
    t0 = time.perf_counter()
    for _ in range(20):
        sess.run(None, {"image": batch32})
    batch_ms = (time.perf_counter() - t0) / 20 * 1e3
    batcher.close()
    print(f"\n## Dynamic batching: tiny_cnn, {clients} client threads x {per_client} requests, "
          f"max_batch_size 32, batch_timeout_ms {timeout_ms}")
    print("| path | requests/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, rate, lat in rows:
        print(f"| {name} | {rate:.0f} | {pct(lat, 50):.2f} | {pct(lat, 99):.2f} |")
    un = np.mean([r[1] for r in rows if r[0].startswith("un")])
    ba = np.mean([r[1] for r in rows if r[0].startswith("batching")])
    print(f"\nthroughput batched / unbatched: {ba / un:.2f}x; mean batch size {stats['mean_batch_size']:.1f}; "
          f"one batch of 32 computes in {batch_ms:.2f} ms (p99 bound: timeout + one batch = "
          f"{timeout_ms + batch_ms:.2f} ms)")


def tiny_add_relu(path):
    """y = relu(x + b) on float[batch, 4]: a model that costs next to nothing, so a hop's
    overhead is not lost in the model's own run-to-run noise."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    b = numpy_helper.from_array(np.array([1.0, -2.0, 3.0, -4.0], np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])], "add_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def native(*args):
    """Runs one section of the C++ benchmark and prints its tables."""
    out = subprocess.run([NATIVE_BENCH, *map(str, args)], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{NATIVE_BENCH} {' '.join(map(str, args))} failed: {out.stderr}")
    print(out.stdout, end="")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--per-client", type=int, default=50)
    ap.add_argument("--timeout-ms", type=float, default=2.0)
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# Actor engine benchmarks, {time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, "
          f"{platform.python_version()}")
    overhead(args.runs)
    batching(args.clients, args.per_client, args.timeout_ms)
    sys.path.insert(0, os.path.join(REPO, "tests", "tools"))
    import export_models
    cifar = export_models.export(os.path.join(REPO, "build", "models"), ["cifar_cnn"])["cifar_cnn"]
    tiny = os.path.join(MODELS, "tiny_cnn.onnx")
    native("hop", tiny_add_relu(os.path.join(REPO, "build", "models", "add_relu.onnx")), args.runs)
    native("hop", tiny, args.runs)
    native("chain", tiny, args.frames)
    for model in (cifar, tiny):
        native("batching", model, args.clients, args.per_client, args.timeout_ms)


if __name__ == "__main__":
    main()
