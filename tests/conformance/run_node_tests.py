#!/usr/bin/python3
"""Runs the ONNX backend node test cases through pyflame_rt and prints `N passed, M failed`.

The cases are generated from Debian's python3-onnx (tests/tools/gen_node_tests.py). Each case
runs in a forked child, so a crash or a hang in one case is recorded as that case's failure
and the run goes on. With --exclusions (the gate), every failing case must be named in that
file with its reason, as ONNX Runtime's filter list does: a case that fails and is not listed
fails the run, so a regression in one op cannot hide behind a fix in another. Listed cases
that pass are reported as stale (remove them; --strict makes that an error too).

    PYTHONPATH=build/python /usr/bin/python3 tests/conformance/run_node_tests.py \
        --data build/onnx-node-tests [-k REGEX] [-v] [--exclusions tests/conformance/node_exclusions.txt]
"""

import argparse
import glob
import os
import pickle
import re
import select
import signal
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RTOL, ATOL = 1e-3, 1e-7  # the ONNX backend test suite's defaults
CASE_TIMEOUT_S = 30


def read_tensor_pb(path):
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def load_case_data(case_dir):
    """(inputs, outputs) lists of arrays for each data set, or None if numpy cannot read it."""
    sets = []
    for ds in sorted(glob.glob(os.path.join(case_dir, "test_data_set_*"))):
        def read_all(prefix):
            files = sorted(glob.glob(os.path.join(ds, prefix + "_*.pb")),
                           key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1)))
            return [read_tensor_pb(f) for f in files]
        try:
            sets.append((read_all("input"), read_all("output")))
        except Exception:  # sequences/optionals stored as other protos
            return None
    return sets or None


def compare(expected, actual, name):
    if actual.shape != expected.shape:
        return f"output '{name}': shape {list(actual.shape)} != expected {list(expected.shape)}"
    if expected.dtype == object or expected.dtype.kind in "SU":
        exp = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(expected) \
            if expected.size else expected
        if not np.array_equal(exp.astype(object), actual.astype(object)):
            return f"output '{name}': strings differ: {actual.ravel()[:5]} vs {exp.ravel()[:5]}"
        return None
    if actual.dtype != expected.dtype:
        return f"output '{name}': dtype {actual.dtype} != expected {expected.dtype}"
    if expected.dtype.kind in "fc":
        try:
            np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
        except AssertionError as e:
            msg = " ".join(str(e).split())
            return f"output '{name}': {msg[:300]}"
        return None
    if not np.array_equal(actual, expected):
        bad = np.argwhere(actual != expected)
        return f"output '{name}': {len(bad)} elements differ, first at {bad[0].tolist()}"
    return None


def run_case(case_dir):
    """Returns None on success or a one-line reason."""
    import pyflame_rt as rt
    data = load_case_data(case_dir)
    sess = rt.InferenceSession(os.path.join(case_dir, "model.onnx"))
    input_names = [i.name for i in sess.get_inputs()]
    output_names = [o.name for o in sess.get_outputs()]
    for inputs, outputs in data:
        if len(inputs) > len(input_names):
            return f"test feeds {len(inputs)} inputs, model has {len(input_names)}"
        feed = dict(zip(input_names, inputs))
        results = sess.run(None, feed)
        if len(results) != len(outputs):
            return f"got {len(results)} outputs, expected {len(outputs)}"
        for name, exp, act in zip(output_names, outputs, results):
            err = compare(exp, np.asarray(act), name)
            if err:
                return err
    return None


def run_in_child(case_dir):
    """Forks, runs the case in the child; returns (ok, reason, seconds)."""
    r, w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            reason = run_case(case_dir)
        except BaseException as e:  # noqa: BLE001 - everything becomes the case's reason
            reason = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        with os.fdopen(w, "wb") as f:
            pickle.dump(reason, f)
        os._exit(0)
    os.close(w)
    chunks = []
    deadline = start + CASE_TIMEOUT_S
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - start
    if timed_out:
        return False, f"timed out after {CASE_TIMEOUT_S} s", seconds
    if not chunks:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return False, f"crashed (signal {sig}, status {status})", seconds
    reason = pickle.loads(b"".join(chunks))
    return reason is None, reason, seconds


def read_exclusions(path):
    """{case name: reason} from lines `test_case_name  reason...` ('#' starts a comment line)."""
    excluded = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(" ")
            if not reason.strip():
                raise SystemExit(f"{path}:{number}: '{name}' has no reason; every exclusion says why it fails")
            excluded[name] = reason.strip()
    return excluded


def ensure_data(data_dir):
    if os.path.isdir(os.path.join(data_dir, "node")):
        return
    gen = os.path.join(REPO, "tests", "tools", "gen_node_tests.py")
    subprocess.check_call([sys.executable, gen, data_dir])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(REPO, "build", "onnx-node-tests"))
    ap.add_argument("-k", "--filter", default="", help="regex on case names")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    ap.add_argument("--floor", help="file holding the minimum pass count (superseded by --exclusions)")
    ap.add_argument("--exclusions", help="file naming every case allowed to fail, each with its reason")
    ap.add_argument("--strict", action="store_true", help="with --exclusions: listed cases that pass are errors")
    ap.add_argument("--list-failures", help="write failing case names to this file")
    args = ap.parse_args()

    ensure_data(args.data)
    import onnx  # noqa: F401 - fail early if python3-onnx is missing
    import pyflame_rt  # noqa: F401 - loaded once here, inherited by every forked case
    cases = sorted(glob.glob(os.path.join(args.data, "node", "test_*")))
    pattern = re.compile(args.filter) if args.filter else None
    passed, failed, skipped = [], [], []
    slowest = []
    start = time.monotonic()
    for case_dir in cases:
        name = os.path.basename(case_dir)
        if pattern and not pattern.search(name):
            continue
        if load_case_data(case_dir) is None:
            skipped.append(name)  # data numpy cannot read (sequence/optional protos)
            continue
        ok, reason, seconds = run_in_child(case_dir)
        slowest.append((seconds, name))
        if ok:
            passed.append(name)
        else:
            failed.append((name, reason))
            if args.verbose:
                print(f"FAIL {name}: {reason}")
    elapsed = time.monotonic() - start
    if args.list_failures:
        with open(args.list_failures, "w") as f:
            f.writelines(f"{n}\t{r}\n" for n, r in failed)
    slowest.sort(reverse=True)
    print(f"ONNX node conformance: {len(passed) + len(failed)} runnable cases, "
          f"{len(skipped)} without numpy-readable data, {elapsed:.1f} s; slowest: "
          + ", ".join(f"{n} {s:.2f}s" for s, n in slowest[:3]))
    print(f"{len(passed)} passed, {len(failed)} failed")
    status = 0
    if args.exclusions:
        excluded = read_exclusions(args.exclusions)
        if pattern:
            excluded = {n: r for n, r in excluded.items() if pattern.search(n)}
        unexpected = [(n, r) for n, r in failed if n not in excluded]
        stale = sorted(set(excluded) & set(passed))
        for n, r in unexpected:
            print(f"NEW FAILURE {n}: {r}")
        for n in stale:
            print(f"now passes, remove from {args.exclusions}: {n}")
        print(f"{len(failed) - len(unexpected)} failures excluded by name, {len(unexpected)} not excluded, "
              f"{len(stale)} exclusions stale")
        if unexpected or (args.strict and stale):
            status = 1
    if args.floor:
        with open(args.floor) as f:
            floor = int(f.read().split()[0])
        if len(passed) < floor:
            print(f"conformance below its floor: {len(passed)} passed < floor {floor} ({args.floor})")
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
