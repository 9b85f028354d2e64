"""The served half of bench/soak.py: a `pyflame-rt serve` process (HTTP, gRPC and ZeroMQ
listeners, models "cnn" and "gru") and one request of each kind against it, every good answer
checked against an in-process run of the same input.

    server = ServedModels(CNN, GRU)        # starts the process; server.stop() ends it
    traffic = ServerTraffic(server, session, gru_session)
    traffic.http(x, bad)                    # raises on an error; AssertionError on a wrong answer
"""
import json
import os
import re
import signal
import socket
import subprocess
import threading

import numpy as np
import zmq

import pyflame_rt as rt
from pyflame_rt.client import InferenceClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
TIMEOUT_S = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedModels:
    """A `pyflame-rt serve` child process with every listener on 127.0.0.1."""

    def __init__(self, cnn, gru):
        self.pull, self.pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen([CLI, "serve", "--model", f"cnn={cnn}", "--model", f"gru={gru}", "--host",
                                      "127.0.0.1", "--http-port", "0", "--grpc-port", "0", "--zmq-pull", self.pull,
                                      "--zmq-pub", self.pub], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addresses = {}
        for _ in range(20):  # bounded: a few "serving ..." lines, then "ready"
            line = self.proc.stdout.readline().strip()
            m = re.match(r"serving (\w+) (.*)$", line)
            if m:
                self.addresses[m.group(1)] = m.group(2)
            if line == "ready" or not line:
                break
        if not {"http", "grpc", "zmq"} <= set(self.addresses):
            self.stop()
            raise RuntimeError(f"pyflame-rt serve did not start its listeners: {self.addresses}")

    def status(self, field):
        """VmRSS (MB) or Threads of the server process, from /proc."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    value = int(line.split()[1])
                    return value / 1024 if field == "VmRSS" else value
        return 0

    def stop(self):
        """SIGTERM, as a deployment stops it; returns its exit code (0: drained and stopped)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def check_close(got, want, what):
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-6):
        raise AssertionError(f"{what}: wrong answer (max abs diff "
                             f"{np.abs(got - want).max() if got.shape == want.shape else got.shape})")


class ServerTraffic:
    """One request per call over each listener. Good requests must succeed with the in-process
    answer; bad ones must fail with a pyflame_rt error (raised here as it came)."""

    def __init__(self, server, cnn, gru):
        self.cnn, self.gru = cnn, gru
        self.http_client = InferenceClient("http://" + server.addresses["http"], model="cnn", timeout=TIMEOUT_S)
        self.grpc_client = InferenceClient("grpc://" + server.addresses["grpc"], model="cnn", timeout=TIMEOUT_S)
        from pyflame_rt import grpc_service_pb2 as pb, grpc_service_pb2_grpc as pb_grpc
        import grpc
        self.pb = pb
        self.channel = grpc.insecure_channel(server.addresses["grpc"])
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)
        self.sequences = 0
        self.lock = threading.Lock()  # the ZeroMQ sockets and counters are shared by the clients
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.connect(server.pull)
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(server.pub)
        self.zmq_seq = 0
        self._zmq_wait_for_subscription()

    def _zmq_wait_for_subscription(self):
        # PUB drops what it sends before our subscription reached it: probe until answered.
        self.sub.RCVTIMEO = 50
        for _ in range(400):
            self.push.send(b"probe")
            try:
                self.sub.recv_multipart()
                break
            except zmq.Again:
                pass
        try:
            while True:
                self.sub.recv_multipart()
        except zmq.Again:
            pass
        self.sub.RCVTIMEO = TIMEOUT_S * 1000

    def http(self, x, bad):
        got = self.http_client.infer({"image": x})["probs"]
        check_close(got, self.cnn.run(None, {"image": x})[0], "http")

    def grpc(self, x, bad):
        got = self.grpc_client.infer({"image": x})["probs"]
        check_close(got, self.cnn.run(None, {"image": x})[0], "grpc")

    def grpc_sequence(self, chunks, bad):
        """One ModelStreamInfer carrying a whole sequence; a bad one names an input the model lacks."""
        with self.lock:
            self.sequences += 1
            sid = f"soak-{self.sequences}"
        requests = []
        for i, c in enumerate(chunks):
            r = self.pb.ModelInferRequest(model_name="gru", id=f"{sid}/{i}")
            t = r.inputs.add(name="nope" if bad else "features", datatype="FP32")
            t.shape.extend(c.shape)
            r.raw_input_contents.append(c.tobytes())
            r.parameters["sequence_id"].string_param = sid
            r.parameters["sequence_start"].bool_param = i == 0
            r.parameters["sequence_end"].bool_param = i == len(chunks) - 1
            requests.append(r)
        answers = list(self.stub.ModelStreamInfer(iter(requests), timeout=TIMEOUT_S))
        if len(answers) != len(chunks):
            raise AssertionError(f"grpc-seq: {len(answers)} answers for {len(chunks)} requests")
        errors = [a.error_message for a in answers if a.error_message]
        if errors:
            raise rt.InvalidArgument(errors[0]) if bad and "InvalidArgument" in errors[0] else \
                RuntimeError(f"grpc-seq: {errors[0]}")
        stream = self.gru.create_stream()
        for i, (c, a) in enumerate(zip(chunks, answers)):
            want = stream.process(c)
            out = a.infer_response
            got = np.frombuffer(out.raw_output_contents[0], np.float32).reshape(list(out.outputs[0].shape))
            check_close(got, want[0], f"grpc-seq {sid} chunk {i}")

    def zmq_request(self, x, bad):
        with self.lock:
            self.zmq_seq += 1
            seq = self.zmq_seq
            shape = list(x.shape)
            if bad:
                shape[1] += 1  # the frame holds fewer bytes than the header announces
            header = {"model": "cnn", "seq": seq, "inputs": [{"name": "image", "datatype": "FP32", "shape": shape}]}
            self.push.send_multipart([json.dumps(header).encode(), x.tobytes()])
            while True:  # answers to earlier requests that timed out may still come: skip them
                topic, head, *frames = self.sub.recv_multipart()
                head = json.loads(head)
                if head.get("seq") == seq:
                    break
        if topic == b"error":
            if head.get("code") == "INVALID_ARGUMENT":
                raise rt.InvalidArgument(head.get("error", ""))
            raise RuntimeError(f"zmq: {head}")
        got = np.frombuffer(frames[0], np.float32).reshape(head["outputs"][0]["shape"])
        check_close(got, self.cnn.run(None, {"image": x})[0], "zmq")

    def close(self):
        self.http_client.close()
        self.grpc_client.close()
        self.channel.close()
        self.ctx.destroy(linger=0)
