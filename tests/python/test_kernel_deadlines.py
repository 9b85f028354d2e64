"""Deadlines inside reference kernels (issue 14, stop 16): one node whose own work a model sizes
(Einsum "i,j->" of two 10^6-element vectors: 10^12 steps, hours) is stopped from inside the
kernel by RunOptions.terminate set from another thread, and by RunOptions.timeout_ms; the
session answers correctly afterwards. The CPU device runs Einsum on the reference kernel.
Waits are bounded; the only time asserted is a generous "stopped" bound."""

import threading
import time

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import TensorProto, helper

import pyflame_rt as rt

N = 1_000_000
STOPPED_WITHIN_S = 10  # the run takes hours without the check; 50-100 ms with it


@pytest.fixture
def outer_sum_model(tmp_path):
    """y = Einsum("i,j->", a, b) = sum(a) * sum(b), a and b float[n]."""
    model = make_model(
        [helper.make_node("Einsum", ["a", "b"], ["y"], name="outer_sum", equation="i,j->")],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["m"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])], opset=12)
    path = tmp_path / "outer_sum.onnx"
    onnx.save(model, str(path))
    return str(path)


def _run_in_thread(fn, seconds=60):
    """Runs fn on a thread, waits at most `seconds`; returns (exception, elapsed seconds)."""
    out = {}

    def target():
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - the test inspects it
            out["error"] = e

    start = time.monotonic()
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the run did not return within {seconds} s"
    return out.get("error"), time.monotonic() - start


def _feeds(n):
    return {"a": np.ones(n, np.float32), "b": np.full(n, 2.0, np.float32)}


def _assert_reference_kernel(session):
    [einsum] = [k for k in session.get_node_placement() if k["node"] == "outer_sum"]
    assert einsum["kernel"] == "reference", einsum  # no native Einsum on the CPU device


def test_terminate_from_another_thread_stops_a_long_reference_kernel(outer_sum_model):
    session = rt.InferenceSession(outer_sum_model)
    _assert_reference_kernel(session)
    ro = rt.RunOptions()
    started = threading.Event()
    timer = threading.Timer(0.1, lambda: setattr(ro, "terminate", True))

    def run():
        started.set()
        session.run(None, _feeds(N), ro)

    timer.start()
    error, elapsed = _run_in_thread(run)
    timer.cancel()
    assert started.is_set()
    assert isinstance(error, rt.Fail) and "terminated" in str(error), repr(error)
    assert elapsed < STOPPED_WITHIN_S, elapsed
    assert session.get_limit_counters()["runs_terminated"] == 1
    # The session is usable: sum(1 x 4) * sum(2 x 3) = 24.
    ro.terminate = False
    assert session.run(None, _feeds(3) | {"a": np.ones(4, np.float32)}, ro)[0] == pytest.approx(24.0)


def test_timeout_stops_a_long_reference_kernel(outer_sum_model):
    session = rt.InferenceSession(outer_sum_model)
    _assert_reference_kernel(session)
    ro = rt.RunOptions()
    ro.timeout_ms = 100
    error, elapsed = _run_in_thread(lambda: session.run(None, _feeds(N), ro))
    assert isinstance(error, rt.DeadlineExceeded), repr(error)
    assert "RunOptions.timeout_ms is 100 ms" in str(error), str(error)
    assert elapsed < STOPPED_WITHIN_S, elapsed
    assert session.get_limit_counters()["runs_deadline_exceeded"] == 1
    assert session.run(None, _feeds(5), ro)[0] == pytest.approx(50.0)
