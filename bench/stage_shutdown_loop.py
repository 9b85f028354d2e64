#!/usr/bin/python3
"""The stage server's shutdown, many times over: each round starts `pyflame-rt serve MODEL
--stage-port 0`, sends it what the hostile trial's stage part sends (bench/hostile_trial.py:
garbage, a ~4 GiB BASP header, a slow sender, a half-written header, each followed by a good
remote call), leaves some raw connections open (half-written, silent), optionally keeps a
run in flight (--endless: a Loop model whose trip count the caller sets to 2^40), then sends
SIGTERM and times the exit. A server that has not exited after --hang-s is a hang: its
threads' stacks are printed with gdb, then it is killed. Prints one line per round and a
summary (exit statuses, slowest exit).

    PYTHONPATH=build/python /usr/bin/python3 bench/stage_shutdown_loop.py [--rounds 50] [--seconds 3]
        [--endless] [--grace-ms 10000]
"""
import argparse
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
sys.path.insert(0, os.path.join(REPO, "tests", "python"))

import pyflame_rt as rt  # noqa: E402
from test_serve_shutdown import endless_loop_model  # noqa: E402


def raw_send(port, data, timeout=2.0, read=True, pause=0.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        for part in data if isinstance(data, list) else [data]:
            s.sendall(part)
            if pause:
                time.sleep(pause)
        if read:
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
    except OSError:
        pass
    finally:
        s.close()


def hostile(rng, port, kept):
    kinds = ["garbage", "huge_basp", "slow", "half_header"]
    kind = rng.choice(kinds + (["keep_half", "keep_silent"] if len(kept) < 8 else []))  # the guard takes 64
    if kind == "garbage":
        raw_send(port, bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000))))
    elif kind == "huge_basp":
        raw_send(port, bytes([rng.choice([0, 1, 2, 3])]) + b"\0" * 3 + struct.pack(">I", 0xFFFFFFF0) + b"\0" * 24)
    elif kind == "slow":
        raw_send(port, [b"\x00", b"\x00\x00"], timeout=1, pause=0.5)
    elif kind == "half_header":
        raw_send(port, b"\x00" * 7, read=False)
    else:
        s = socket.create_connection(("127.0.0.1", port))
        if kind == "keep_half":
            s.sendall(b"\x00" * rng.randint(1, 31))
        kept.append(s)
    return kind


def gdb_stacks(pid):
    out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"], capture_output=True,
                         text=True, timeout=120)
    return out.stdout[-20000:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=3.0, help="hostile traffic per round")
    ap.add_argument("--endless", action="store_true", help="serve an endless Loop and keep a run of it in flight")
    ap.add_argument("--grace-ms", type=int, default=10000)
    ap.add_argument("--hang-s", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--cli", default=CLI, help="the pyflame-rt binary (default: build/bin's)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="pfrt_stage_shutdown_")
    model = CNN
    if args.endless:
        model = os.path.join(tmp, "endless.onnx")
        endless_loop_model(model)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    codes, exits = {}, []
    for r in range(args.rounds):
        proc = subprocess.Popen([args.cli, "serve", model, "--stage-port", "0", "--name", "s", "--threads", "1",
                                 "--shutdown-grace-ms", str(args.grace_ms)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        m = re.search(r":(\d+)$", proc.stdout.readline().strip())
        port = int(m.group(1))
        kept, kinds, calls = [], [], 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            kinds.append(hostile(rng, port, kept))
            if not args.endless:
                rt.RemoteStage("127.0.0.1", port, timeout_ms=10000).run(None, {"image": x})
                calls += 1
        if args.endless:
            def endless_call():
                try:
                    rt.RemoteStage("127.0.0.1", port, timeout_ms=120000).run(
                        None, {"M": np.array(1 << 40, np.int64), "v": np.zeros(1, np.float32)})
                except Exception:  # noqa: BLE001: ended by the shutdown
                    pass
            threading.Thread(target=endless_call, daemon=True).start()
            time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=args.hang_s)
        except subprocess.TimeoutExpired:
            print(f"round {r}: HANG ({args.hang_s} s after SIGTERM); kinds {kinds}\n{gdb_stacks(proc.pid)}", flush=True)
            proc.kill()
            code = proc.wait()
            code = "hang"
        elapsed = time.monotonic() - start
        for s in kept:
            s.close()
        err = proc.stderr.read().strip()
        codes[code] = codes.get(code, 0) + 1
        exits.append(elapsed)
        print(f"round {r}: exit {code} after {elapsed * 1000:.0f} ms; {len(kinds)} hostile connections "
              f"({len(kept)} left open), {calls} good calls" + (f"; stderr: {err[-300:]}" if err else ""), flush=True)
    exits.sort()
    print(f"{args.rounds} rounds: exit statuses {codes}; exit after SIGTERM p50 {exits[len(exits) // 2] * 1000:.0f} ms, "
          f"max {exits[-1] * 1000:.0f} ms; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
