#!/usr/bin/python3
"""Benchmarks the actor engine against direct session.run() baselines, side by side:

1. overhead: stream.process() and one batching-actor hop (batcher.run, batch size 1) over a
   direct run() of the same chunk, interleaved call by call (p50/p99 of each and of the
   difference);
2. chain: a three-stage pipeline (model stages, 1 intra-op thread each) against the
   throughput of its slowest stage run alone;
3. batching: a small CNN under 32 concurrent client threads, unbatched (each thread calls
   run()) against the batching actor (max_batch_size 32): throughput and p99 latency.

    make bench-actors   (or: PYTHONPATH=build/python /usr/bin/python3 bench/bench_actors.py)
"""
import argparse
import os
import platform
import threading
import time

import numpy as np

import pyflame_rt as rt

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(os.path.dirname(HERE), "examples", "models")


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


def chain(frames):
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1
    cnn = os.path.join(MODELS, "tiny_cnn.onnx")
    stages = [rt.InferenceSession(cnn, opts) for _ in range(3)]
    images = [np.random.default_rng(i).standard_normal((4, 3, 32, 32)).astype(np.float32) for i in range(8)]
    # Stage 1 classifies a batch of 4 images; stages 2 and 3 classify the same images again
    # (a stand-in for embed and verify): the three have the same cost.
    alone = []
    for s in stages:
        for img in images:
            s.run(None, {"image": img})
        t0 = time.perf_counter()
        for i in range(frames):
            s.run(None, {"image": images[i % 8]})
        alone.append(frames / (time.perf_counter() - t0))
    p = rt.Pipeline()
    p.add_stage("a", session=stages[0])
    p.add_stage("b", session=stages[1], after=["a"])
    p.add_stage("c", session=stages[2], after=["b"])
    p.start()
    for i in range(20):
        p.push({"image": images[i % 8]})
    for i in range(20):
        p.pull(10000)
    t0 = time.perf_counter()
    pusher = threading.Thread(target=lambda: [p.push({"image": images[i % 8]}) for i in range(frames)])
    pusher.start()
    for _ in range(frames):
        p.pull(10000).raise_for_error()
    rate = frames / (time.perf_counter() - t0)
    pusher.join()
    p.stop()
    slowest = min(alone)
    print("\n## Three-stage chain (tiny_cnn, batch 4, 1 thread per stage), frames per second")
    print("| stage alone a / b / c | slowest | pipeline | pipeline / slowest | sequential bound (1/sum) |")
    print("|---|---|---|---|---|")
    seq = 1.0 / sum(1.0 / a for a in alone)
    print(f"| {alone[0]:.0f} / {alone[1]:.0f} / {alone[2]:.0f} | {slowest:.0f} | {rate:.0f} | "
          f"{rate / slowest:.2f} | {seq:.0f} |")


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--per-client", type=int, default=50)
    ap.add_argument("--timeout-ms", type=float, default=2.0)
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# Actor engine benchmarks, {time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores, "
          f"{platform.python_version()}")
    overhead(args.runs)
    chain(args.frames)
    batching(args.clients, args.per_client, args.timeout_ms)


if __name__ == "__main__":
    main()
