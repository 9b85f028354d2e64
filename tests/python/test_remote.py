"""Scale-out from Python: a model and a Python function served by other processes, used as
pipeline stages over loopback; a server that dies and comes back; clear errors."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyflame_rt as rt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
PYTHON_PATH = os.path.join(REPO, "build", "python")


class Server:
    """A server in a child process; its first stdout line ends with ':PORT'."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": PYTHON_PATH})
        line = self.proc.stdout.readline()
        assert line.startswith("serving"), f"server did not start: {line!r}"
        self.port = int(line.rsplit(":", 1)[1])

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def model_server():
    server = Server([CLI, "serve", CNN, "--port", "0", "--threads", "1"])
    yield server
    server.kill()


PYTHON_SERVER = textwrap.dedent("""
    import sys
    import numpy as np
    import pyflame_rt as rt

    def brighten(frame):
        if frame["image"].min() < -10:
            raise ValueError("image too dark")
        return {**frame, "image": frame["image"] + 1.0, "brightened": np.array([1], np.int64)}

    server = rt.serve(brighten, name="brighten", port=int(sys.argv[1]))
    print(f"serving stage 'brighten' on 127.0.0.1:{server.port}", flush=True)
    sys.stdin.readline()      # until the test closes stdin or kills us
    server.stop()
""")


def python_server(port=0):
    return Server([sys.executable, "-c", PYTHON_SERVER, str(port)])


def images(n):
    rng = np.random.default_rng(7)
    return [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(n)]


def test_remote_model_matches_the_local_session(model_server):
    local = rt.InferenceSession(CNN)
    remote = rt.RemoteStage("127.0.0.1", model_server.port)
    assert (remote.name, remote.inputs, remote.outputs) == ("tiny_cnn", ["image"], ["probs"])
    for x in images(3):
        np.testing.assert_allclose(remote.run(None, {"image": x})[0], local.run(None, {"image": x})[0],
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(rt.InvalidArgument, match="no entry for model input 'image'"):
        remote.run(None, {"picture": images(1)[0]})
    with pytest.raises(rt.InvalidArgument, match="dimension 2 must be 32.*got 16"):
        remote.run(None, {"image": np.zeros((1, 3, 16, 16), np.float32)})


def test_two_served_processes_in_one_pipeline(model_server):
    brighten = python_server()
    try:
        local = rt.InferenceSession(CNN)
        p = rt.Pipeline()
        p.add_stage("brighten", remote=f"127.0.0.1:{brighten.port}")
        p.add_stage("classify", remote=("127.0.0.1", model_server.port))
        p.add_stage("top", fn=lambda f: {**f, "top": f["probs"].argmax(axis=1)})
        with p:
            xs = images(5)
            for x in xs:
                p.push({"image": x, "camera": np.array([3], np.int64)}, stream=1)
            for i, x in enumerate(xs):
                r = p.pull(timeout_ms=10000)
                assert r.ok, r
                assert r.seq == i
                want = local.run(None, {"image": x + 1.0})[0]
                np.testing.assert_allclose(r.outputs["probs"], want, rtol=1e-5, atol=1e-6)
                assert r.outputs["brightened"][0] == 1 and r.outputs["camera"][0] == 3
                assert r.outputs["top"][0] == want.argmax()
    finally:
        brighten.kill()


def test_served_function_errors_travel_back_and_server_loss_is_named():
    brighten = python_server()
    port = brighten.port
    p = rt.Pipeline().add_stage("brighten", remote=f"127.0.0.1:{port}").start()
    p.push({"image": np.full((1, 2), -20.0, np.float32)})
    r = p.pull(10000)
    assert isinstance(r.error, rt.RuntimeException) and "image too dark" in str(r.error)
    assert "stage 'brighten'" in str(r.error)

    brighten.kill()
    p.push({"image": np.zeros((1, 2), np.float32)})
    r = p.pull(10000)
    assert isinstance(r.error, rt.Unavailable)
    assert f"remote stage 'brighten' at 127.0.0.1:{port}" in str(r.error)

    back = python_server(port)          # same port: the pipeline reconnects
    try:
        p.push({"image": np.zeros((1, 2), np.float32)})
        r = p.pull(10000)
        assert r.ok, r
        np.testing.assert_array_equal(r.outputs["image"], np.ones((1, 2), np.float32))
    finally:
        p.close()
        back.kill()


def test_serving_in_process_and_bad_addresses():
    with rt.serve(lambda f: {"y": f["x"] * 3}, name="triple") as server:
        stage = rt.RemoteStage(f"127.0.0.1:{server.port}")
        assert stage.name == "triple" and stage.inputs == []
        out = stage.call({"x": np.array([2.0], np.float32)})
        assert out["y"][0] == 6.0 and "x" not in out
        assert server.stats() == {"frames_served": 1, "frames_failed": 0}
        with pytest.raises(rt.InvalidArgument, match="serves a function, not a model"):
            stage.run(None, {"x": np.array([2.0], np.float32)})
    with pytest.raises(rt.InvalidArgument, match="expected 'host:port'"):
        rt.RemoteStage("localhost")
    with pytest.raises(rt.Unavailable, match="cannot connect to 127.0.0.1:1"):
        rt.RemoteStage("127.0.0.1", 1)
    with pytest.raises(rt.InvalidArgument, match="expected an InferenceSession or a callable"):
        rt.serve(42)
