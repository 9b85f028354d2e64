"""Limits that hold (issue 14): each a clear error naming the limit, the value asked for and
the allowed, and a counter. Waits are bounded; nothing asserts on speed."""

import re
import threading
import time

import numpy as np
import onnx
import pytest
from conftest import make_model
from loop_models import counting_loop_model as _loop_model
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt


def _concat_relu_model(path):
    """y = Relu(Concat(x, x)), x: float[n, 1024] (dynamic n: creation cannot size the run; the
    Concat output is a new buffer twice the feed's size, never the feed written in place)."""
    model = make_model(
        [helper.make_node("Concat", ["x", "x"], ["c"], name="cat", axis=0),
         helper.make_node("Relu", ["c"], ["y"], name="relu")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", 1024])])
    onnx.save(model, str(path))
    return str(path)


def _constant_of_shape_model(path):
    """y = ConstantOfShape(shape): the reference kernel allocates what the feed asks for."""
    model = make_model(
        [helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill",
                          value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))],
        [helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(model, str(path))
    return str(path)


def _gru_model(path, hidden=64, features=40, batch=5):
    """One GRU layer with constant weights, x: float[T, batch, features] with T symbolic, so
    creation cannot size the run. Batches above 4 run on oneDNN's GRU primitive, whose
    scratchpad holds every time step's gates: about 20 times the output Y [T, 1, batch, hidden]."""
    rng = np.random.default_rng(14)
    w = numpy_helper.from_array(rng.uniform(-0.3, 0.3, (1, 3 * hidden, features)).astype(np.float32), "W")
    r = numpy_helper.from_array(rng.uniform(-0.3, 0.3, (1, 3 * hidden, hidden)).astype(np.float32), "R")
    b = numpy_helper.from_array(rng.uniform(-0.1, 0.1, (1, 6 * hidden)).astype(np.float32), "B")
    model = make_model(
        [helper.make_node("GRU", ["x", "W", "R", "B"], ["y", "y_h"], name="gru", hidden_size=hidden)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", batch, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", 1, batch, hidden]),
         helper.make_tensor_value_info("y_h", TensorProto.FLOAT, [1, batch, hidden])],
        [w, r, b])
    onnx.save(model, str(path))
    return str(path)


def _in_thread(fn, seconds=60):
    """Runs fn on a thread, waits at most `seconds`; returns (result, exception)."""
    out = {}

    def target():
        try:
            out["result"] = fn()
        except Exception as e:  # noqa: BLE001 - the test inspects it
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the call did not return within {seconds} s"
    return out.get("result"), out.get("error")


# max_model_size_mb ---------------------------------------------------------------------------

def test_max_model_size_refuses_a_file_before_parsing_it(tmp_path):
    path = tmp_path / "big.onnx"
    path.write_bytes(b"\x00" * (2 << 20))  # 2 MB of garbage: parsing would say InvalidProtobuf
    before = rt.limit_counters()["models_too_large"]
    with pytest.raises(rt.ResourceExhausted, match=r"2097152 bytes, more than SessionOptions.max_model_size_mb "
                                                   r"allows \(1 MB = 1048576 bytes\)"):
        rt.InferenceSession(str(path), rt.SessionOptions(max_model_size_mb=1))
    assert rt.limit_counters()["models_too_large"] == before + 1
    with pytest.raises(rt.InvalidProtobuf):  # within the limit it is parsed (and is not a model)
        rt.InferenceSession(str(path), rt.SessionOptions(max_model_size_mb=4))


def test_max_model_size_refuses_bytes_and_has_a_default(tmp_path, add_relu_model):
    data = open(add_relu_model, "rb").read()
    padded = data + b"\x00" * ((1 << 20) + 1 - len(data))
    with pytest.raises(rt.ResourceExhausted, match="the model bytes is 1048577 bytes.*max_model_size_mb"):
        rt.InferenceSession(padded, rt.SessionOptions(max_model_size_mb=1))
    assert rt.SessionOptions().max_model_size_mb == 2048
    with pytest.raises(rt.InvalidArgument, match="max_model_size_mb: expected >= 0"):
        rt.InferenceSession(data, rt.SessionOptions(max_model_size_mb=-1))
    out = rt.InferenceSession(data, rt.SessionOptions(max_model_size_mb=1)).run(None, {"x": np.ones((1, 4), np.float32)})
    np.testing.assert_array_equal(out[0], [[2, 0, 4, 0]])


# memory_limit_mb at run time ----------------------------------------------------------------

@pytest.mark.parametrize("memory_pool", ["arena", "default"])
def test_memory_limit_fails_the_run_and_the_session_stays_usable(tmp_path, memory_pool):
    session = rt.InferenceSession(_concat_relu_model(tmp_path / "cat.onnx"),
                                  rt.SessionOptions(memory_limit_mb=1, memory_pool=memory_pool))
    big = -np.ones((1024, 1024), np.float32)  # 8 MB out of Concat; the 4 MB feed itself is not charged
    with pytest.raises(rt.ResourceExhausted, match=r"more memory than SessionOptions.memory_limit_mb allows: 1 MB "
                                                   r"\(1048576 bytes\) allowed, \d+ bytes held, \d+ more asked for"):
        session.run(None, {"x": big})
    assert session.get_limit_counters()["runs_memory_exceeded"] == 1
    small = np.arange(-8, 8, dtype=np.float32).reshape(16, 1).repeat(1024, 1)  # 128 KB out: fits
    np.testing.assert_array_equal(session.run(None, {"x": small})[0], np.maximum(np.concatenate([small, small]), 0))
    # Without a limit the same run passes.
    free = rt.InferenceSession(_concat_relu_model(tmp_path / "cat2.onnx"))
    assert free.run(None, {"x": big})[0].shape == (2048, 1024)


def test_memory_limit_covers_reference_kernel_allocations(tmp_path):
    session = rt.InferenceSession(_constant_of_shape_model(tmp_path / "cos.onnx"), rt.SessionOptions(memory_limit_mb=8))
    before = rt.limit_counters()["runs_memory_exceeded"]
    with pytest.raises(rt.ResourceExhausted, match=r"memory_limit_mb allows: 8 MB.*16777216 more asked for"):
        session.run(None, {"shape": np.array([1024, 4096], np.int64)})  # 16 MB
    assert rt.limit_counters()["runs_memory_exceeded"] == before + 1
    assert session.run(None, {"shape": np.array([2, 3], np.int64)})[0].tolist() == [[1, 1, 1], [1, 1, 1]]


def test_memory_limit_covers_onednn_scratchpads(tmp_path):
    # 400 steps of batch 5: Y is 512 KB, oneDNN's scratchpad 10.8 MB. The scratchpad comes
    # from the run's buffer pool and is charged like an output: 4 MB is refused at it, naming it.
    path = _gru_model(tmp_path / "gru.onnx")
    x = np.random.default_rng(7).uniform(-1, 1, (400, 5, 40)).astype(np.float32)
    want = rt.InferenceSession(path).run(None, {"x": x})
    tight = rt.InferenceSession(path, rt.SessionOptions(memory_limit_mb=4))
    with pytest.raises(rt.ResourceExhausted) as error:
        tight.run(None, {"x": x})
    message = str(error.value)
    assert "SessionOptions.memory_limit_mb allows: 4 MB (4194304 bytes) allowed" in message, message
    asked = re.search(r"(\d+) more asked for \(a oneDNN scratchpad\)", message)
    assert asked and int(asked.group(1)) > 4 << 20, message  # the scratchpad alone passes the limit
    assert tight.get_limit_counters()["runs_memory_exceeded"] == 1
    # Within the limit the same session runs it, with the same answer; and a limit that
    # allows it from the start runs it too.
    short = x[:20]
    np.testing.assert_allclose(tight.run(None, {"x": short})[0], rt.InferenceSession(path).run(None, {"x": short})[0],
                               rtol=1e-5, atol=1e-6)
    got = rt.InferenceSession(path, rt.SessionOptions(memory_limit_mb=32)).run(None, {"x": x})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_memory_limit_covers_the_recurrent_loops_input_projection(op, gates):
    # Our loop projects every step's input at once: T x gates x H floats, `gates` times Y.
    # 4,096 steps at H 256: Y is 4 MB, an LSTM's projection 16 MB, a GRU's 12 MB, an RNN's 4 MB.
    hidden, steps = 256, 4096
    rng = np.random.default_rng(15)
    w = numpy_helper.from_array(rng.uniform(-0.1, 0.1, (1, gates * hidden, 1)).astype(np.float32), "W")
    r = numpy_helper.from_array(rng.uniform(-0.1, 0.1, (1, gates * hidden, hidden)).astype(np.float32), "R")
    model = make_model(
        [helper.make_node(op, ["x", "W", "R"], ["y"], name="cell", hidden_size=hidden)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", 1, 1, hidden])], [w, r]).SerializeToString()
    x = rng.uniform(-1, 1, (steps, 1, 1)).astype(np.float32)
    # above Y alone, below Y and the projection (RNN 8 MB, GRU 16 MB, LSTM 20 MB)
    limit = 6 if op == "RNN" else 12
    tight = rt.InferenceSession(model, rt.SessionOptions(memory_limit_mb=limit))
    if op != "RNN":
        with pytest.raises(rt.ResourceExhausted, match=rf"memory_limit_mb allows: 12 MB.*an? {op}'s input projection"):
            tight.run(None, {"x": x})
        limit = 32
    else:
        with pytest.raises(rt.ResourceExhausted, match=r"memory_limit_mb allows: 6 MB.*an RNN's input projection"):
            tight.run(None, {"x": x})
        limit = 16
    got = rt.InferenceSession(model, rt.SessionOptions(memory_limit_mb=limit)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, rt.InferenceSession(model).run(None, {"x": x})[0], rtol=1e-6, atol=1e-7)


# RunOptions.timeout_ms --------------------------------------------------------------------

def test_deadline_stops_a_loop_that_would_run_forever(tmp_path):
    session = rt.InferenceSession(_loop_model(tmp_path / "loop.onnx"))
    feeds = {"trips": np.array(1 << 62, np.int64), "cond": np.array(True), "v0": np.zeros(1, np.float32)}
    ro = rt.RunOptions()
    ro.timeout_ms = 100
    _, error = _in_thread(lambda: session.run(None, feeds, ro))
    assert isinstance(error, rt.DeadlineExceeded), repr(error)
    assert "RunOptions.timeout_ms is 100 ms" in str(error)
    assert session.get_limit_counters()["runs_deadline_exceeded"] == 1
    # The session runs on, with and without a deadline.
    feeds["trips"] = np.array(5, np.int64)
    assert session.run(None, feeds, ro)[0].tolist() == [5.0]
    assert session.run(None, feeds)[0].tolist() == [5.0]


def test_terminate_is_counted_and_timeout_is_checked(tmp_path):
    session = rt.InferenceSession(_loop_model(tmp_path / "loop.onnx"))
    feeds = {"trips": np.array(1 << 62, np.int64), "cond": np.array(True), "v0": np.zeros(1, np.float32)}
    ro = rt.RunOptions()
    timer = threading.Timer(0.1, lambda: setattr(ro, "terminate", True))
    timer.start()
    _, error = _in_thread(lambda: session.run(None, feeds, ro))
    timer.cancel()
    assert isinstance(error, rt.Fail) and "terminated" in str(error), repr(error)
    assert session.get_limit_counters()["runs_terminated"] == 1
    with pytest.raises(rt.InvalidArgument, match="RunOptions.timeout_ms: expected >= 0"):
        ro.timeout_ms = -1


# Stream idle timeout ----------------------------------------------------------------------

def test_an_idle_stream_is_freed_and_later_chunks_are_refused(add_relu_model):
    session = rt.InferenceSession(add_relu_model)
    before = rt.limit_counters()["streams_idle_expired"]
    stream = session.create_stream(stateful=False, time_axis=0, idle_timeout_ms=50, name="mic-9")
    chunk = np.ones((2, 4), np.float32)
    assert stream.process(chunk)[0].tolist() == [[2, 0, 4, 0]] * 2
    deadline = time.monotonic() + 30  # bounded wait for the reaper; no timing is asserted
    while not stream.idle_expired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.idle_expired
    with pytest.raises(rt.DeadlineExceeded, match=r"stream 'mic-9': process\(\) after the stream was freed.*"
                                                  r"idle_timeout_ms \(50 ms\)"):
        stream.process(chunk)
    assert rt.limit_counters()["streams_idle_expired"] == before + 1
    # Streams without a timeout are never freed; a new stream works.
    kept = session.create_stream(stateful=False, time_axis=0)
    again = session.create_stream(stateful=False, time_axis=0, idle_timeout_ms=60000)
    assert again.process(chunk)[0].shape == (2, 4) and kept.process(chunk)[0].shape == (2, 4)
    assert not again.idle_expired and not kept.idle_expired
    with pytest.raises(rt.InvalidArgument, match="idle_timeout_ms: expected >= 0"):
        session.create_stream(stateful=False, time_axis=0, idle_timeout_ms=-5)


# max_streams -----------------------------------------------------------------------------

def test_max_streams_refuses_one_more_and_a_closed_or_expired_stream_frees_its_slot(add_relu_model):
    session = rt.InferenceSession(add_relu_model, rt.SessionOptions(max_streams=2))
    a = session.create_stream(stateful=False, time_axis=0)
    b = session.create_stream(stateful=False, time_axis=0, idle_timeout_ms=30)
    with pytest.raises(rt.ResourceExhausted, match=r"stream 'late': 2 streams are open on this session, "
                                                   r"SessionOptions.max_streams is 2"):
        session.create_stream(stateful=False, time_axis=0, name="late")
    assert session.get_limit_counters()["streams_refused"] == 1
    a.close()
    c = session.create_stream(stateful=False, time_axis=0)
    deadline = time.monotonic() + 30  # b's producer never sent anything: it expires
    while not b.idle_expired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.idle_expired
    d = session.create_stream(stateful=False, time_axis=0)
    assert c.process(np.ones((1, 4), np.float32))[0].tolist() == [[2, 0, 4, 0]]
    assert d.process(np.ones((1, 4), np.float32))[0].tolist() == [[2, 0, 4, 0]]
