"""The actor engine from Python: streams (state, windows, overlap) and dynamic batching."""
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import pyflame_rt as rt
from conftest import REPO, make_model


@pytest.fixture(scope="module")
def gru_model(tmp_path_factory):
    """2-layer GRU 16 -> 32 exported by torch with dynamic batch and time axes."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Gru(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(input_size=16, hidden_size=32, num_layers=2, batch_first=True)

        def forward(self, x, h0):
            return self.gru(x, h0)

    path = str(tmp_path_factory.mktemp("gru") / "gru.onnx")
    with warnings.catch_warnings():  # torch's tracer warnings say nothing about our runtime
        warnings.simplefilter("ignore")
        _export(torch, Gru(), path)
    return path


def _export(torch, model, path):
    torch.onnx.export(model.eval(), (torch.randn(1, 10, 16), torch.zeros(2, 1, 32)), path,
                      input_names=["x", "h0"], output_names=["y", "hn"], opset_version=14,
                      dynamic_axes={"x": {0: "batch", 1: "time"}, "h0": {1: "batch"},
                                    "y": {0: "batch", 1: "time"}, "hn": {1: "batch"}})


@pytest.mark.parametrize("chunk", [1, 7, 25, 60])
def test_stateful_gru_chunk_by_chunk_equals_one_whole_run(gru_model, chunk):
    session = rt.InferenceSession(gru_model)
    x = np.random.default_rng(1).standard_normal((1, 60, 16)).astype(np.float32)
    y_whole, hn_whole = session.run(None, {"x": x, "h0": np.zeros((2, 1, 32), np.float32)})
    stream = session.create_stream(stateful=True)
    assert stream.state_pairs == {"h0": "hn"}
    ys = []
    for t in range(0, 60, chunk):
        y, hn = stream.process(x[:, t:t + chunk])
        ys.append(y)
    np.testing.assert_allclose(np.concatenate(ys, axis=1), y_whole, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hn, hn_whole, rtol=1e-5, atol=1e-5)


def test_windowed_gru_with_uneven_chunks_and_flush(gru_model):
    session = rt.InferenceSession(gru_model)
    x = np.random.default_rng(2).standard_normal((1, 50, 16)).astype(np.float32)
    y_whole, _ = session.run(None, {"x": x, "h0": np.zeros((2, 1, 32), np.float32)})
    stream = session.create_stream(chunk_size=8, overlap=0)
    ys = []
    pos = 0
    for n in (3, 11, 8, 20, 2):  # smaller and larger than chunk_size; 44 samples
        out = stream.process(x[:, pos:pos + n])
        pos += n
        if out:
            ys.append(out[0])
    out = stream.process(x[:, pos:])
    if out:
        ys.append(out[0])
    ys.append(stream.flush()[0])  # the last 2 samples: a partial window
    np.testing.assert_allclose(np.concatenate(ys, axis=1), y_whole, rtol=1e-5, atol=1e-5)


def test_state_given_and_reset(gru_model):
    session = rt.InferenceSession(gru_model)
    x = np.random.default_rng(3).standard_normal((1, 5, 16)).astype(np.float32)
    h0 = np.full((2, 1, 32), 0.5, np.float32)
    stream = session.create_stream(state={"h0": h0}, name="speaker-7")
    first = stream.process(x)[1]
    expected = session.run(["hn"], {"x": x, "h0": h0})[0]
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
    stream.reset()
    np.testing.assert_allclose(stream.process(x)[1], expected, rtol=1e-5, atol=1e-6)
    assert "speaker-7" in repr(stream)


def test_bad_chunks_name_the_stream_and_the_stream_carries_on(gru_model):
    session = rt.InferenceSession(gru_model)
    stream = session.create_stream(name="mic-2")
    good = np.zeros((1, 4, 16), np.float32)
    with pytest.raises(rt.InvalidArgument, match=r"stream 'mic-2'.*expected dtype tensor\(float\), got tensor\(double\)"):
        stream.process(good.astype(np.float64))
    with pytest.raises(rt.InvalidArgument, match=r"stream 'mic-2'.*expected rank 3"):
        stream.process(np.zeros((4, 16), np.float32))
    with pytest.raises(rt.InvalidArgument, match=r"dimension 2 must be 16.*got 15"):
        stream.process(np.zeros((1, 4, 15), np.float32))
    assert len(stream.process(good)) == 2
    with pytest.raises(rt.InvalidArgument, match=r"state 'h0'"):
        session.create_stream(state={"h0": np.zeros((2, 1, 31), np.float32)}).process(good)
    with pytest.raises(rt.InvalidArgument, match=r"overlap"):
        session.create_stream(chunk_size=4, overlap=4)
    stream.close()
    with pytest.raises(rt.Unavailable, match=r"stream 'mic-2'.*after close"):
        stream.process(good)


def test_several_streams_on_one_session_concurrently(gru_model):
    session = rt.InferenceSession(gru_model)
    xs = [np.random.default_rng(10 + i).standard_normal((1, 30, 16)).astype(np.float32) for i in range(4)]
    expected = [session.run(["hn"], {"x": x, "h0": np.zeros((2, 1, 32), np.float32)})[0] for x in xs]
    results = [None] * 4

    def feed(i):
        stream = session.create_stream()
        for t in range(0, 30, 5):
            results[i] = stream.process(xs[i][:, t:t + 5])[1]

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_run_batch_matches_single_runs(add_relu_model):
    session = rt.InferenceSession(add_relu_model)
    feeds = [{"x": np.random.default_rng(i).standard_normal((1, 4)).astype(np.float32)} for i in range(32)]
    results = session.run_batch(["y"], feeds, max_batch_size=8)
    assert len(results) == 32
    for feed, result in zip(feeds, results):
        np.testing.assert_allclose(result[0], session.run(["y"], feed)[0], rtol=1e-6)
    stats = session._batchers[(8, 2.0)].stats()
    assert stats["requests"] == 32 and stats["batched_requests"] == 32
    assert stats["model_runs"] < 32  # requests were coalesced


def test_run_batch_reports_the_bad_feed_and_answers_the_rest(add_relu_model):
    session = rt.InferenceSession(add_relu_model)
    feeds = [{"x": np.ones((1, 4), np.float32)}, {"x": np.ones((1, 3), np.float32)}]
    with pytest.raises(rt.InvalidArgument, match=r"input_feeds\[1\].*input 'x'"):
        session.run_batch(None, feeds)
    with pytest.raises(rt.InvalidArgument, match=r"input_feeds\[0\]: expected a dict"):
        session.run_batch(None, [np.ones((1, 4), np.float32)])


@pytest.mark.parametrize("device_actors", [1, 2])
def test_batcher_under_concurrent_clients(add_relu_model, device_actors):
    session = rt.InferenceSession(add_relu_model)
    with session.create_batcher(max_batch_size=16, batch_timeout_ms=5, device_actors=device_actors) as batcher:
        errors = []

        def client(i):
            x = np.full((1, 4), float(i), np.float32)
            for _ in range(10):
                y = batcher.run(None, {"x": x})[0]
                if not np.allclose(y, np.maximum(x + [1, -2, 3, -4], 0)):
                    errors.append(i)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        stats = batcher.stats()
        assert stats["requests"] == 160
        assert stats["mean_batch_size"] > 1.0
        assert stats["queued"] == 0
    with pytest.raises(rt.Unavailable, match="stopped"):
        batcher.run(None, {"x": np.ones((1, 4), np.float32)})


def test_batcher_options_are_checked(add_relu_model):
    session = rt.InferenceSession(add_relu_model)
    with pytest.raises(rt.InvalidArgument, match=r"max_batch_size: expected >= 1, got 0"):
        session.create_batcher(max_batch_size=0)
    with pytest.raises(rt.InvalidArgument, match=r"preferred_batch_sizes"):
        session.create_batcher(max_batch_size=4, preferred_batch_sizes=[8])


def test_shutdown_stops_batchers_and_the_process_exits_cleanly(add_relu_model):
    script = f"""
import numpy as np, pyflame_rt as rt
s = rt.InferenceSession({add_relu_model!r})
b = s.create_batcher()
assert b.run(None, {{"x": np.ones((1, 4), np.float32)}})[0].shape == (1, 4)
assert rt.actor_runtime_threads() > 0
rt.shutdown()
try:
    b.run(None, {{"x": np.ones((1, 4), np.float32)}})
    raise SystemExit("no error after shutdown")
except rt.Unavailable as e:
    print("unavailable:", e)
s.run_batch(None, [{{"x": np.ones((1, 4), np.float32)}}] * 4)  # the runtime starts again
print("ok")
"""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "build", "python"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "unavailable:" in done.stdout and done.stdout.strip().endswith("ok")


def test_exit_waits_for_a_stuck_batch_only_within_its_grace(tmp_path):
    # A batch inside one large MatMul (a oneDNN primitive: nothing in it checks the run) when the
    # interpreter exits: the exit used to wait for it without a bound (seconds to hours). Now
    # it waits at most pyflame_rt.runtime.EXIT_GRACE_MS (2 s), says what it left running, and keeps the exit status.
    n = 9000  # 1.5e12 flops: over 6 s on one thread of any CPU, far over the grace
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])
    model = str(tmp_path / "big_matmul.onnx")
    onnx.save(make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], [a, b], [y]), model)
    script = f"""
import sys, threading, time, numpy as np, pyflame_rt as rt
opts = rt.SessionOptions(); opts.intra_op_num_threads = 1
s = rt.InferenceSession({model!r}, opts)
batcher = s.create_batcher(max_batch_size=1)
x = np.ones(({n}, {n}), np.float32)
threading.Thread(target=lambda: batcher.run(None, {{"a": x, "b": x}}), daemon=True).start()
time.sleep(1.5)  # the batch is inside the MatMul
print("exiting", time.monotonic(), flush=True)
sys.exit(7)
"""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "build", "python"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    ended = time.monotonic()
    assert done.returncode == 7, done.stderr
    exiting = float(done.stdout.split()[-1])
    assert ended - exiting < 2 + 4, f"the exit took {ended - exiting:.1f} s"
    assert "exiting with 1 actor(s) still running after 2000 ms" in done.stderr, done.stderr


def test_shutdown_grace_is_checked_and_a_bounded_shutdown_of_idle_actors_returns_zero(add_relu_model):
    for bad in (-1, "1", True, 3_600_001):
        with pytest.raises(rt.InvalidArgument, match=r"shutdown: grace_ms: expected a number of milliseconds in \[0, 3600000\]"):
            rt.shutdown(grace_ms=bad)
    session = rt.InferenceSession(add_relu_model)
    batcher = session.create_batcher()
    assert batcher.run(None, {"x": np.ones((1, 4), np.float32)})[0].shape == (1, 4)
    assert rt.shutdown(grace_ms=5000) == 0
    assert rt.actor_runtime_threads() == 0
    assert len(session.run_batch(None, [{"x": np.ones((1, 4), np.float32)}] * 2)) == 2  # starts again


def test_sessions_compile_asynchronously_on_the_compiler_actor(add_relu_model, gru_model):
    pending = [rt.InferenceSession.create_async(gru_model) for _ in range(2)]
    running = rt.InferenceSession(add_relu_model)  # inference goes on while they compile
    x = np.ones((1, 4), np.float32)
    assert running.run(None, {"x": x})[0].shape == (1, 4)
    for f in pending:
        session = f.result(timeout=120)
        assert f.done() and [i.name for i in session.get_inputs()] == ["x", "h0"]
        assert session.run(None, {"x": np.zeros((1, 3, 16), np.float32),
                                  "h0": np.zeros((2, 1, 32), np.float32)})[1].shape == (2, 1, 32)
    missing = rt.InferenceSession.create_async("/nonexistent/model.onnx")
    with pytest.raises(rt.NoSuchFile):
        missing.result(timeout=60)
