"""ZeroMQ ingestion against a real `pyflame-rt serve` process on 127.0.0.1, with python3-zmq:
round trips equal session.run(), streams keep state in seq order, gaps and late frames are
counted and reported, malformed frames are answered on the error topic and serving goes on."""
import json
import os
import re
import signal
import socket
import subprocess

import numpy as np
import pytest
import zmq

import pyflame_rt as rt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
GRU = os.path.join(REPO, "examples", "models", "tiny_gru.onnx")
TIMEOUT = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    pull, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([CLI, "serve", "--model", f"cnn={CNN}", "--model", f"gru={GRU}", "--host", "127.0.0.1",
                             "--http-port", "0", "--zmq-pull", pull, "--zmq-pub", pub],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addresses = {}
    for _ in range(20):
        line = proc.stdout.readline().strip()
        m = re.match(r"serving (\w+) (.*)$", line)
        if m:
            addresses[m.group(1)] = m.group(2)
        if line == "ready" or not line:
            break
    assert addresses.get("zmq") == f"pull {pull} pub {pub}", proc.stderr.read() if proc.poll() is not None else ""
    yield {"pull": pull, "pub": pub, "http": addresses["http"]}
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


class Peer:
    """A PUSH producer and a SUB consumer (every topic), with bounded receives."""

    def __init__(self, server):
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.connect(server["pull"])
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(server["pub"])
        # PUB drops messages until our subscription has reached it: probe (bounded) until an
        # answer comes back, then drain.
        self.sub.RCVTIMEO = 50
        for _ in range(200):
            self.push.send(b"probe")
            try:
                self.sub.recv_multipart()
                break
            except zmq.Again:
                pass
        self.drain()
        self.sub.RCVTIMEO = TIMEOUT * 1000

    def drain(self):
        self.sub.RCVTIMEO = 100
        try:
            while True:
                self.sub.recv_multipart()
        except zmq.Again:
            pass

    def send(self, header, *arrays):
        self.push.send_multipart([json.dumps(header).encode(), *[a.tobytes() for a in arrays]])

    def receive(self):
        topic, head, *frames = self.sub.recv_multipart()
        return topic.decode(), json.loads(head), frames

    def close(self):
        self.ctx.destroy(linger=0)


@pytest.fixture
def peer(server):
    p = Peer(server)
    yield p
    p.close()


def cnn_header(x, seq, **extra):
    return {"model": "cnn", "seq": seq, "inputs": [{"name": "image", "datatype": "FP32", "shape": list(x.shape)}],
            **extra}


def gru_header(seq, stream="mic-1", **extra):
    return {"model": "gru", "stream": stream, "seq": seq,
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3, 40]}], **extra}


def chunk(seed):
    return np.random.default_rng(seed).standard_normal((1, 3, 40)).astype(np.float32)


def test_round_trip_equals_session_run(peer):
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    peer.send(cnn_header(x, 41, outputs=["probs"]), x)
    topic, head, frames = peer.receive()
    assert topic == "cnn" and head["seq"] == 41 and head["model"] == "cnn"
    assert head["outputs"] == [{"name": "probs", "datatype": "FP32", "shape": [2, 10]}]
    got = np.frombuffer(frames[0], np.float32).reshape(2, 10)
    np.testing.assert_allclose(got, rt.InferenceSession(CNN).run(None, {"image": x})[0], rtol=1e-6, atol=1e-7)


def test_stream_state_gaps_and_late_frames(peer):
    stream = rt.InferenceSession(GRU).create_stream()
    chunks = [chunk(s) for s in range(3)]
    want = [stream.process(c)[0] for c in chunks]
    peer.send(gru_header(10, start=True), chunks[0])
    peer.send(gru_header(11), chunks[1])
    answers = [peer.receive(), peer.receive()]
    assert [(t, h["seq"]) for t, h, _ in answers] == [("mic-1", 10), ("mic-1", 11)]
    for (_, h, frames), w in zip(answers, want):
        np.testing.assert_allclose(np.frombuffer(frames[0], np.float32).reshape(h["outputs"][0]["shape"]), w,
                                   rtol=1e-5, atol=1e-6)
    peer.send(gru_header(14), chunks[2])  # 12 and 13 never came: a gap of 2, still processed
    topic, head, frames = peer.receive()
    assert topic == "mic-1" and head["seq"] == 14 and head["gap"] == 2
    np.testing.assert_allclose(np.frombuffer(frames[0], np.float32).reshape(1, 3, 32), want[2], rtol=1e-5, atol=1e-6)
    peer.send(gru_header(12), chunks[2])  # late: not fed
    topic, head, _ = peer.receive()
    assert topic == "error" and head["code"] == "ABORTED" and head["seq"] == 12 and head["stream"] == "mic-1"
    assert "arrived after seq 14" in head["error"]
    peer.send(gru_header(15, end=True), chunks[0])
    assert peer.receive()[1]["seq"] == 15


@pytest.mark.parametrize("frames, code, text", [
    ([b"not json", b"x"], "INVALID_ARGUMENT", "not valid JSON"),
    ([b"[1, 2]"], "INVALID_ARGUMENT", "JSON object"),
    ([json.dumps({"model": "cnn", "seq": 1, "inputs": [{"name": "image", "datatype": "FP32",
                                                        "shape": [1, 3, 32, 32]}]}).encode()],
     "INVALID_ARGUMENT", "2 frames were expected, got 1"),
    ([json.dumps({"model": "cnn", "seq": 2, "inputs": [{"name": "image", "datatype": "FP32",
                                                        "shape": [1, 3, 32, 32]}]}).encode(), b"\0" * 7],
     "INVALID_ARGUMENT", "needs 12288 bytes, got 7"),
    ([json.dumps({"model": "cnn", "seq": 3, "inputs": [{"name": "image", "datatype": "FP32",
                                                        "shape": [1, 4, 32, 32]}]}).encode(), b"\0" * 16384],
     "INVALID_ARGUMENT", "image"),
    ([json.dumps({"model": "nope", "seq": 4, "inputs": []}).encode()], "NOT_FOUND", "nope"),
    ([json.dumps({"model": "cnn", "inputs": []}).encode()], "INVALID_ARGUMENT", "seq"),
])
def test_malformed_frames_get_an_error_and_serving_goes_on(peer, server, frames, code, text):
    peer.push.send_multipart(frames)
    topic, head, _ = peer.receive()
    assert topic == "error" and head["code"] == code and text in head["error"], head
    x = np.ones((1, 3, 32, 32), np.float32)
    peer.send(cnn_header(x, 99), x)
    topic, head, _ = peer.receive()
    assert topic == "cnn" and head["seq"] == 99


def test_malformed_frames_are_counted_in_metrics(peer, server):
    import urllib.request
    peer.push.send_multipart([b"{"])
    assert peer.receive()[0] == "error"
    with urllib.request.urlopen(f"http://{server['http']}/metrics", timeout=TIMEOUT) as r:
        text = r.read().decode()
    m = re.search(r'pyflame_\w*failure\w*\{[^}]*reason="zmq_malformed"[^}]*\} (\d+)', text)
    assert m and int(m.group(1)) >= 1, text[-2000:]
    # test_stream_state_gaps_and_late_frames left a gap of 2 frames and one late frame.
    assert 'pyflame_server_events_total{event="zmq_gap_frames"} 2' in text
    assert 'pyflame_server_request_failure_total{reason="zmq_out_of_order"} 1' in text
