"""Soak: mixed traffic over every interface for a bounded time, bad requests mixed in.

    PYTHONPATH=build/python /usr/bin/python3 bench/soak.py --seconds 600

Interfaces: session.run, a batcher (several clients), a stream, a pipeline (Python stage +
model stage), a remote stage (a served model over loopback), and a `pyflame-rt serve` process
over HTTP, gRPC (ModelInfer, and ModelStreamInfer carrying whole GRU sequences) and ZeroMQ
(bench/soak_server.py). About one request in five is bad (wrong shape or dtype, missing input,
unknown output, a 0-row batch, a non-array, a chunk of the wrong rank, an input the model
lacks, a frame shorter than its header says). Every good answer from the server is compared
with an in-process run of the same input. Reports requests served, errors by kind (per
interface), p99 latency per interval, resident memory and threads of this process and of the
server at start and end. A good request that fails or answers wrongly, a bad one that succeeds
where it must not, or an exception that is not a pyflame_rt error is counted as "unexpected":
the run exits 1 if there is any.
"""
import argparse
import array
import collections
import os
import random
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "python"))
import pyflame_rt as rt  # noqa: E402
from host import cpu_model  # noqa: E402  (bench/ is sys.path[0])
from soak_server import ServedModels, ServerTraffic  # noqa: E402

CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
GRU = os.path.join(REPO, "examples", "models", "tiny_gru.onnx")


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def threads():
    return len(os.listdir("/proc/self/task"))




class Stats:
    def __init__(self, interval):
        self.lock = threading.Lock()
        self.interval = interval
        self.start = time.monotonic()
        self.ok = collections.Counter()
        self.errors = collections.Counter()  # (interface, kind)
        self.unexpected = []
        # interval index -> seconds (good requests); an array of doubles, not a list of floats:
        # 700k Python floats were ~25 MB of the RSS growth this soak reports.
        self.latencies = collections.defaultdict(lambda: array.array("d"))

    def record(self, interface, seconds, error=None, expected_error=False):
        with self.lock:
            if error is None:
                self.ok[interface] += 1
                self.latencies[int((time.monotonic() - self.start) / self.interval)].append(seconds)
                if expected_error:
                    self.unexpected.append(f"{interface}: a bad request succeeded")
            else:
                kind = type(error).__name__
                self.errors[(interface, kind)] += 1
                if not isinstance(error, rt.PyFlameRTError) or not expected_error:
                    if len(self.unexpected) < 50:
                        self.unexpected.append(f"{interface}: {kind}: {str(error)[:200]}")


def image(rows=1, rng=np.random.default_rng()):
    return rng.standard_normal((rows, 3, 32, 32)).astype(np.float32)


def bad_cnn_feeds():
    """(feed, output names) pairs that must fail (except the 0-row batch, which is valid)."""
    return [
        ({"image": np.zeros((1, 3, 31, 32), np.float32)}, None),
        ({"image": np.zeros((1, 3, 32, 32), np.float64)}, None),
        ({"picture": image()}, None),
        ({"image": image()}, ["no_such_output"]),
        ({"image": [[1, 2, 3]]}, None),
        ({"image": "not an array"}, None),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="duration (default 10 minutes)")
    ap.add_argument("--clients", type=int, default=4, help="client threads")
    ap.add_argument("--interval", type=float, default=30.0, help="seconds per p99 interval")
    ap.add_argument("--bad-fraction", type=float, default=0.2)
    args = ap.parse_args()

    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; {args.seconds:.0f} s, {args.clients} clients")
    rss0, threads0 = rss_mb(), threads()
    session = rt.InferenceSession(CNN)
    batcher = session.create_batcher(max_batch_size=8, batch_timeout_ms=2)
    gru = rt.InferenceSession(GRU)
    gru_input = gru.get_inputs()[0]
    server = rt.serve(session, name="cnn")
    remote = rt.RemoteStage("127.0.0.1", server.port, timeout_ms=10000)
    pipeline = rt.Pipeline()
    pipeline.add_stage("scale", fn=lambda f: {"image": f["image"] * np.float32(0.5)})
    pipeline.add_stage("cnn", session=session)
    pipeline.start()
    served_models = ServedModels(CNN, GRU)
    traffic = ServerTraffic(served_models, session, gru)
    server_rss0, server_threads0 = served_models.status("VmRSS"), served_models.status("Threads")
    server_rss, server_threads = [], []
    pipeline_lock = threading.Lock()  # push + pull pairs stay together per client
    stats = Stats(args.interval)
    deadline = time.monotonic() + args.seconds
    rss_mid, threads_mid = [], []

    def timed(interface, fn, bad):
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - counting every kind is the point
            stats.record(interface, time.perf_counter() - t0, e, bad)
        else:
            stats.record(interface, time.perf_counter() - t0, None, bad)

    def stream_chunk(stream, rng, bad):
        shape = [d if isinstance(d, int) else 1 for d in gru_input.shape]
        if bad:
            shape = shape[:-1]  # wrong rank
        stream.process(rng.standard_normal(shape).astype(np.float32))

    def pipeline_frame(x):
        with pipeline_lock:
            pipeline.push({"image": x})
            pipeline.pull(timeout_ms=10000).raise_for_error()

    def client(seed):
        rng = np.random.default_rng(seed)
        stream = gru.create_stream(name=f"soak-{seed}")
        while time.monotonic() < deadline:
            bad = random.random() < args.bad_fraction
            which = random.choice(["run", "batcher", "stream", "pipeline", "remote", "http", "grpc", "grpc-seq",
                                   "zmq"])
            feed, names = random.choice(bad_cnn_feeds()) if bad else ({"image": image(rng.integers(1, 4), rng)}, None)
            if which == "run":
                timed("run", lambda: session.run(names, feed), bad)
            elif which == "batcher":
                timed("batcher", lambda: batcher.run(names, feed), bad)
            elif which == "stream":
                timed("stream", lambda: stream_chunk(stream, rng, bad), bad)
            elif which == "pipeline":
                x = np.zeros((1, 3, 31, 32), np.float32) if bad else image(1, rng)
                timed("pipeline", lambda: pipeline_frame(x), bad)
            elif which == "remote":
                timed("remote", lambda: remote.run(names, feed), bad)
            elif which in ("http", "grpc", "zmq"):
                x = np.zeros((1, 3, 31, 32), np.float32) if bad and which != "zmq" else image(rng.integers(1, 4), rng)
                call = {"http": traffic.http, "grpc": traffic.grpc, "zmq": traffic.zmq_request}[which]
                timed(which, lambda: call(x, bad), bad)
            else:
                shape = [1, int(rng.integers(1, 6)), 40]
                chunks = [rng.standard_normal(shape).astype(np.float32) for _ in range(int(rng.integers(1, 5)))]
                timed("grpc-seq", lambda: traffic.grpc_sequence(chunks, bad), bad)
            if random.random() < 0.01:  # a 0-row batch now and then: valid, empty answer
                timed("run-empty", lambda: session.run(None, {"image": image(0, rng)}), False)
        stream.close()

    workers = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for w in workers:
        w.start()
    next_report = time.monotonic() + args.interval
    while any(w.is_alive() for w in workers):
        time.sleep(0.5)
        if time.monotonic() >= next_report:
            next_report += args.interval
            rss_mid.append(rss_mb())
            threads_mid.append(threads())
            server_rss.append(served_models.status("VmRSS"))
            server_threads.append(served_models.status("Threads"))
    for w in workers:
        w.join(60)
    pipeline.stop()
    server.stop()
    batcher.close()
    traffic.close()
    server_rss_end, server_threads_end = served_models.status("VmRSS"), served_models.status("Threads")
    server_exit = served_models.stop()

    served = sum(stats.ok.values())
    print(f"requests served: {served} ({dict(stats.ok)})")
    print("errors by kind:")
    for (interface, kind), n in sorted(stats.errors.items()):
        print(f"  {interface:10s} {kind:20s} {n}")
    print("p99 latency of good requests per interval:")
    for k in sorted(stats.latencies):
        lat = np.array(stats.latencies[k]) * 1e3  # reporting only, after the runs
        print(f"  {k * args.interval:6.0f}-{(k + 1) * args.interval:<6.0f}s  n={lat.size:6d}  "
              f"p50={np.percentile(lat, 50):7.2f} ms  p99={np.percentile(lat, 99):7.2f} ms")
    print(f"RSS MB: start {rss0:.0f}, after setup-and-traffic intervals {[round(r) for r in rss_mid]}, "
          f"end {rss_mb():.0f}")
    print(f"threads: start {threads0}, intervals {threads_mid}, end {threads()}")
    print(f"server process RSS MB: after start {server_rss0:.0f}, intervals {[round(r) for r in server_rss]}, "
          f"end {server_rss_end:.0f}")
    print(f"server process threads: after start {server_threads0}, intervals {server_threads}, "
          f"end {server_threads_end}; exit code after SIGTERM {server_exit}")
    if server_exit != 0:
        stats.unexpected.append(f"pyflame-rt serve exited with {server_exit} after SIGTERM")
    if stats.unexpected:
        print(f"UNEXPECTED ({len(stats.unexpected)}):")
        for u in stats.unexpected:
            print("  " + u)
        return 1
    print("unexpected: 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
