"""`pyflame-rt serve` stops within its shutdown grace (--shutdown-grace-ms) at SIGTERM, whatever
its clients do: hostile raw connections left open (a half-written BASP header, a silent peer,
a slow sender) and a run in flight that would never end on its own. Past the grace, the
process reports what was still running on stderr and exits with status 3 instead of hanging
(docs/reliability.md, "Shutdown")."""
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt
from loop_models import counting_loop_model, loop_feeds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
TIMEOUT = 60


def dnnl_gru_model(path, hidden=1024, batch=5):
    """A GRU on constant weights, time-major, batch 5: oneDNN's primitive runs it in one call
    (our polling loop takes batches up to 4), which nothing interrupts: a run of many steps
    outlasts a short grace."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((1, 3 * hidden, 1)) * 0.01).astype(np.float32)
    r = (rng.standard_normal((1, 3 * hidden, hidden)) * 0.01).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GRU", ["x", "W", "R"], ["y", "y_h"], hidden_size=hidden)],
        "long_gru",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["steps", batch, 1])],
        [helper.make_tensor_value_info("y_h", TensorProto.FLOAT, [1, batch, hidden])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


class Stage:
    """`pyflame-rt serve MODEL --stage-port 0` in a child process."""

    def __init__(self, model, *extra):
        self.proc = subprocess.Popen([CLI, "serve", model, "--stage-port", "0", "--threads", "1", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"^serving stage .* on [\d.]+:(\d+)", line.strip())
        assert m, f"server did not start: {line!r} {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.port = int(m.group(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:  # a failed assertion before stop(): leave no server behind
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM; (exit status, seconds to exit, stderr)."""
        code, elapsed = sigterm_and_wait(self.proc)
        return code, elapsed, self.proc.stderr.read()


def sigterm_and_wait(proc):
    """SIGTERM, then the exit: (status, seconds it took); killed if it outlives TIMEOUT."""
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, time.monotonic() - start


def hostile_connections(port):
    """The hostile trial's raw TCP, left open: a half-written BASP header, a silent peer, a
    header whose payload never comes, a slow sender mid-header."""
    socks = []
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"\x00" * 7)
    socks.append(half)
    socks.append(socket.create_connection(("127.0.0.1", port)))  # says nothing
    pending = socket.create_connection(("127.0.0.1", port))
    pending.sendall(bytes([2]) + b"\0" * 3 + struct.pack(">I", 1 << 20) + b"\0" * 24)  # 1 MiB announced, none sent
    socks.append(pending)
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"\x00")
    socks.append(slow)
    refused = socket.create_connection(("127.0.0.1", port))  # ~4 GiB announced: the guard closes it
    refused.sendall(bytes([1]) + b"\0" * 3 + struct.pack(">I", 0xFFFFFFF0) + b"\0" * 24)
    socks.append(refused)
    return socks


def call_in_background(port, feeds, timeout_ms=TIMEOUT * 1000):
    """Runs one remote call on a thread; returns (thread, outcome list)."""
    outcome = []

    def call():
        try:
            outcome.append(rt.RemoteStage("127.0.0.1", port, timeout_ms=timeout_ms).run(None, feeds))
        except Exception as e:  # noqa: BLE001: the outcome is what the test looks at
            outcome.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    return t, outcome


def endless_infer_in_background(base_url):
    """POSTs a KServe v2 request for the endless Loop model (2^40 trips) at base_url on a thread;
    returns (thread, answer list): "ok", (HTTP status, body) or the exception."""
    import json
    import urllib.error
    import urllib.request
    body = json.dumps({"inputs": [{"name": "trips", "shape": [], "datatype": "INT64", "data": [1 << 40]},
                                  {"name": "cond", "shape": [], "datatype": "BOOL", "data": [True]},
                                  {"name": "v0", "shape": [1], "datatype": "FP32", "data": [0]}]}).encode()
    answer = []

    def call():
        try:
            urllib.request.urlopen(urllib.request.Request(base_url + "/v2/models/endless/infer", data=body,
                                                          headers={"Content-Type": "application/json"}),
                                   timeout=TIMEOUT)
            answer.append("ok")
        except urllib.error.HTTPError as e:
            answer.append((e.code, e.read().decode()))
        except Exception as e:  # noqa: BLE001: the answer is what the test looks at
            answer.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    return t, answer


def test_a_stage_with_hostile_connections_and_an_endless_run_stops_within_its_grace(tmp_path):
    model = str(tmp_path / "endless.onnx")
    counting_loop_model(model)
    with Stage(model, "--name", "endless", "--shutdown-grace-ms", "5000") as stage:
        socks = hostile_connections(stage.port)
        caller, outcome = call_in_background(stage.port, loop_feeds())
        time.sleep(1.0)  # the run is under way, the connections open
        assert not outcome, outcome
        code, elapsed, err = stage.stop()
    for s in socks:
        s.close()
    caller.join(timeout=TIMEOUT)
    assert code == 0, err
    assert elapsed < 5.0, f"{elapsed:.1f} s to exit; stderr: {err}"
    # The caller learns that its run was stopped by the shutdown (or that the server went).
    assert outcome and isinstance(outcome[0], rt.Unavailable), outcome
    assert re.search(r"shutting down|cannot be reached|connection|lost|stopped", str(outcome[0])), outcome


def test_a_run_that_does_not_stop_ends_the_process_at_the_grace_with_a_report(tmp_path):
    model = str(tmp_path / "gru.onnx")
    dnnl_gru_model(model)
    with Stage(model, "--name", "gru", "--shutdown-grace-ms", "500") as stage:
        socks = hostile_connections(stage.port)
        steps = 40000  # ~10^12 multiply-adds: far longer than the grace on any machine
        caller, outcome = call_in_background(stage.port, {"x": np.ones((steps, 5, 1), np.float32)})
        time.sleep(1.0)
        assert not outcome, f"the run ended before the shutdown: {outcome}"
        code, elapsed, err = stage.stop()
    for s in socks:
        s.close()
    assert code == 3, err
    assert elapsed < 5.0, f"{elapsed:.1f} s to exit"
    assert "the shutdown did not finish within --shutdown-grace-ms 500 ms" in err, err
    assert re.search(r"a frame of stage 'gru' running for \d+ ms", err), err
    assert "1 model run(s) in progress" in err, err
    caller.join(timeout=TIMEOUT)


def test_an_idle_stage_and_an_idle_model_server_exit_at_once_with_status_0():
    with Stage(CNN) as stage:
        socks = hostile_connections(stage.port)
        code, elapsed, err = stage.stop()
    for s in socks:
        s.close()
    assert code == 0, err
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    proc = subprocess.Popen([CLI, "serve", "--model", f"cnn={CNN}", "--host", "127.0.0.1", "--http-port", "0",
                             "--grpc-port", "0", "--shutdown-grace-ms", "3000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(20):
        if proc.stdout.readline().strip() in ("ready", ""):
            break
    code, elapsed = sigterm_and_wait(proc)
    assert code == 0, proc.stderr.read()
    assert elapsed < 3.0


def test_a_closed_stdout_does_not_kill_the_server_at_shutdown():
    # `pyflame-rt serve ... | head -1` reads the port line and closes the pipe: the closing
    # "stopping after N frames" line died of SIGPIPE (returncode -13 here); it must exit 0.
    proc = subprocess.Popen([CLI, "serve", CNN, "--stage-port", "0", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("serving stage"), line
    proc.stdout.close()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, (proc.returncode, err)


@pytest.mark.parametrize("value", ["0", "-5", "abc", "3600001"])
def test_a_bad_shutdown_grace_is_a_usage_error_naming_the_option(value):
    out = subprocess.run([CLI, "serve", CNN, "--stage-port", "0", f"--shutdown-grace-ms={value}"],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 2, out
    assert "--shutdown-grace-ms" in out.stderr, out.stderr


def test_the_model_server_stops_an_endless_request_and_answers_it_503(tmp_path):
    model = str(tmp_path / "endless.onnx")
    counting_loop_model(model)
    proc = subprocess.Popen([CLI, "serve", "--model", f"endless={model}", "--host", "127.0.0.1", "--http-port", "0",
                             "--shutdown-grace-ms", "5000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    http = None
    for _ in range(20):
        line = proc.stdout.readline().strip()
        m = re.match(r"serving http (.*)$", line)
        if m:
            http = m.group(1)
        if line in ("ready", ""):
            break
    if not http:
        proc.kill()
        pytest.fail(f"no http address: {proc.stderr.read()}")
    caller, answer = endless_infer_in_background(f"http://{http}")
    time.sleep(1.0)
    if answer:
        proc.kill()
        pytest.fail(f"answered before the shutdown: {answer}")
    code, elapsed = sigterm_and_wait(proc)
    caller.join(timeout=TIMEOUT)
    assert code == 0, proc.stderr.read()
    assert elapsed < 5.0, f"{elapsed:.1f} s"
    assert answer and answer[0][0] == 503, answer
    assert "the run was stopped: the server is shutting down" in answer[0][1], answer


# rt.serve in this process: StageServer.stop(grace_ms) ---------------------------------------

def test_python_serve_stop_ends_an_endless_run_with_unavailable_within_its_grace(tmp_path):
    session = rt.InferenceSession(counting_loop_model(tmp_path / "loop.onnx"))
    server = rt.serve(session, name="endless", shutdown_grace_ms=2000)
    caller, outcome = call_in_background(server.port, loop_feeds())
    time.sleep(1.0)  # the run is under way
    assert not outcome, outcome
    # A run of the same session outside the server is not stopped by the server's shutdown.
    ro = rt.RunOptions()
    other_outcome = []
    other = threading.Thread(target=lambda: other_outcome.append(
        _outcome(lambda: session.run(None, loop_feeds(), ro))), daemon=True)
    other.start()
    start = time.monotonic()
    assert server.stop() is True, "the stopped run did not end within the grace"
    elapsed = time.monotonic() - start
    caller.join(timeout=TIMEOUT)
    assert elapsed < 5.0, f"stop() took {elapsed:.1f} s"
    assert outcome and isinstance(outcome[0], rt.Unavailable), outcome
    assert "the run was stopped: stage 'endless' is shutting down" in str(outcome[0]), outcome
    time.sleep(0.2)
    assert other.is_alive() and not other_outcome, f"the server's stop ended another run: {other_outcome}"
    ro.terminate = True
    other.join(timeout=TIMEOUT)
    assert isinstance(other_outcome[0], rt.Fail) and "terminated" in str(other_outcome[0]), other_outcome
    # The session runs on after its server stopped; stop() again is a no-op.
    assert session.run(None, loop_feeds(5))[0].tolist() == [5.0]
    assert server.stop() is True


def _outcome(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001: the outcome is what the test looks at
        return e


def test_python_serve_stop_abandons_a_frame_that_does_not_end_at_its_grace():
    release = threading.Event()
    started = threading.Event()

    def stuck(frame):  # a Python stage nothing can interrupt
        started.set()
        release.wait(TIMEOUT)
        return frame

    server = rt.serve(stuck, name="stuck")
    outcome = []
    caller = threading.Thread(target=lambda: outcome.append(_outcome(
        lambda: rt.RemoteStage("127.0.0.1", server.port, timeout_ms=3000).call({"x": np.zeros(1, np.float32)}))),
        daemon=True)
    caller.start()
    assert started.wait(TIMEOUT)
    start = time.monotonic()
    assert server.stop(grace_ms=300) is False, "the stuck frame was reported as ended"
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 5.0, f"stop(grace_ms=300) took {elapsed:.2f} s"
    caller.join(timeout=TIMEOUT)
    # The caller is not left waiting past its own timeout_ms: a client in another process sees
    # the connection close (Unavailable); this one, in the server's process, is answered by CAF
    # without the network, so the abandoned frame leaves it to its deadline.
    assert outcome and isinstance(outcome[0], (rt.Unavailable, rt.DeadlineExceeded)), outcome
    release.set()  # the abandoned frame ends on its own (rt.shutdown at exit would wait for it)


@pytest.mark.parametrize("grace", [-1, "5", None, 3600001, True])
def test_python_serve_grace_must_be_milliseconds_in_range(grace):
    if grace is None:  # None means "the server's default" for stop(); as serve()'s value it is refused
        with pytest.raises(rt.InvalidArgument, match=r"serve: shutdown_grace_ms: expected a number of milliseconds"):
            rt.serve(lambda f: f, shutdown_grace_ms=grace)
        return
    with pytest.raises(rt.InvalidArgument, match=r"serve: shutdown_grace_ms: expected a number of milliseconds in "
                                                 r"\[0, 3600000\], got"):
        rt.serve(lambda f: f, shutdown_grace_ms=grace)
    with rt.serve(lambda f: f) as server:
        with pytest.raises(rt.InvalidArgument, match=r"StageServer.stop: grace_ms: expected"):
            server.stop(grace_ms=grace)


def test_python_model_server_stop_ends_an_endless_request_and_answers_it_503(tmp_path):
    from pyflame_rt.serving import ModelServer
    session = rt.InferenceSession(counting_loop_model(tmp_path / "loop.onnx"))
    server = ModelServer(session=session, name="endless", host="127.0.0.1", port=0,
                         shutdown_grace_ms=2000).start_background()
    caller, answer = endless_infer_in_background(server.url)
    time.sleep(1.0)  # the run is under way
    assert not answer, answer
    start = time.monotonic()
    server.stop()
    elapsed = time.monotonic() - start
    caller.join(timeout=TIMEOUT)
    assert elapsed < 5.0, f"stop() took {elapsed:.1f} s"
    # Before: stop() returned, the connection was dropped unanswered and the run went on for good
    # (holding a core, and rt.shutdown() at exit waiting for it).
    assert answer and answer[0][0] == 503, answer
    assert "the run was stopped: the model server is shutting down" in answer[0][1], answer
    # The session serves in-process runs afterwards.
    assert session.run(None, loop_feeds(4))[0].tolist() == [4.0]


@pytest.mark.parametrize("grace", [-1, "5", None, 3600001, True])
def test_python_model_server_grace_must_be_milliseconds_in_range(grace, add_relu_model):
    from pyflame_rt.serving import ModelServer
    with pytest.raises(rt.InvalidArgument, match=r"MultiModelServer: shutdown_grace_ms: expected a number of "
                                                 r"milliseconds in \[0, 3600000\], got"):
        ModelServer(add_relu_model, port=0, shutdown_grace_ms=grace)
