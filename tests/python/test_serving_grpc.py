"""KServe v2 over gRPC against a real server process on 127.0.0.1, with Python stubs generated
from our own .proto: outputs equal session.run(), typed and raw contents, every bad input gets
its status code, ModelStreamInfer keeps sequence state, disconnects leave the server serving."""
import os
import re
import signal
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest

import pyflame_rt as rt
from pyflame_rt import grpc_service_pb2 as pb
from pyflame_rt import grpc_service_pb2_grpc as pb_grpc
from pyflame_rt.serving import GRPCServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
GRU = os.path.join(REPO, "examples", "models", "tiny_gru.onnx")
TIMEOUT = 60


def start_cli(*extra):
    """A `pyflame-rt serve` child process; returns (proc, {listener: address}) once it is ready."""
    proc = subprocess.Popen([CLI, "serve", "--model", f"cnn={CNN}", "--model", f"gru={GRU}", "--host", "127.0.0.1",
                             "--http-port", "0", "--grpc-port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addresses = {}
    for _ in range(20):  # bounded: the server prints a few lines, then "ready"
        line = proc.stdout.readline().strip()
        m = re.match(r"serving (\w+) (.*)$", line)
        if m:
            addresses[m.group(1)] = m.group(2)
        if line == "ready" or not line:
            break
    if "grpc" not in addresses:
        proc.kill()
        raise AssertionError(f"the server did not start: {proc.stderr.read()}")
    return proc, addresses


def stop_cli(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def server():
    proc, addresses = start_cli()
    yield addresses
    stop_cli(proc)


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server["grpc"])
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    yield pb_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def cnn():
    return rt.InferenceSession(CNN)


def images(n, seed):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)


def raw_request(model, arrays, datatype="FP32", **params):
    req = pb.ModelInferRequest(model_name=model, id="r1")
    for name, a in arrays.items():
        t = req.inputs.add(name=name, datatype=datatype)
        t.shape.extend(a.shape)
        req.raw_input_contents.append(a.tobytes())
    for k, v in params.items():
        if isinstance(v, bool):
            req.parameters[k].bool_param = v
        elif isinstance(v, int):
            req.parameters[k].int64_param = v
        else:
            req.parameters[k].string_param = v
    return req


def output(resp, i=0, dtype=np.float32):
    return np.frombuffer(resp.raw_output_contents[i], dtype=dtype).reshape(list(resp.outputs[i].shape))


def test_health_and_metadata(stub):
    assert stub.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT).live
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="cnn"), timeout=TIMEOUT).ready
    meta = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=TIMEOUT)
    assert meta.name == "pyflame_rt" and "sequence" in meta.extensions
    m = stub.ModelMetadata(pb.ModelMetadataRequest(name="gru"), timeout=TIMEOUT)
    assert [(t.name, t.datatype, list(t.shape)) for t in m.inputs] == [("features", "FP32", [1, -1, 40]),
                                                                       ("h", "FP32", [1, 1, 64])]
    assert [t.name for t in m.outputs] == ["embedding", "h_out"]
    index = stub.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=TIMEOUT)
    assert sorted(x.name for x in index.models) == ["cnn", "gru"]


def test_raw_and_typed_inputs_match_session_run(stub, cnn):
    x = images(3, 1)
    want = cnn.run(None, {"image": x})[0]
    resp = stub.ModelInfer(raw_request("cnn", {"image": x}), timeout=TIMEOUT)
    assert resp.model_name == "cnn" and resp.id == "r1" and resp.outputs[0].datatype == "FP32"
    np.testing.assert_allclose(output(resp), want, rtol=1e-6, atol=1e-7)

    typed = pb.ModelInferRequest(model_name="cnn")
    t = typed.inputs.add(name="image", datatype="FP32")
    t.shape.extend(x.shape)
    t.contents.fp32_contents.extend(x.ravel().tolist())
    typed.outputs.add(name="probs")
    np.testing.assert_allclose(output(stub.ModelInfer(typed, timeout=TIMEOUT)), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mutate, code, text", [
    (lambda r: setattr(r, "model_name", "nope"), grpc.StatusCode.NOT_FOUND, "nope"),
    (lambda r: setattr(r, "model_version", "7"), grpc.StatusCode.NOT_FOUND, "7"),
    (lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 10), grpc.StatusCode.INVALID_ARGUMENT, "12288"),
    (lambda r: setattr(r.inputs[0], "datatype", "FP8"), grpc.StatusCode.INVALID_ARGUMENT, "FP8"),
    (lambda r: r.inputs[0].shape.__setitem__(1, 4), grpc.StatusCode.INVALID_ARGUMENT, "image"),
    (lambda r: setattr(r.inputs[0], "name", "img"), grpc.StatusCode.INVALID_ARGUMENT, "img"),
    (lambda r: r.outputs.add(name="logits"), grpc.StatusCode.INVALID_ARGUMENT, "logits"),
    (lambda r: r.raw_input_contents.append(b"x"), grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents"),
    (lambda r: setattr(r.parameters["priority"], "int64_param", -1), grpc.StatusCode.INVALID_ARGUMENT, "priority"),
])
def test_bad_requests_get_their_status(stub, cnn, mutate, code, text):
    req = raw_request("cnn", {"image": images(1, 2)})
    mutate(req)
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(req, timeout=TIMEOUT)
    assert err.value.code() == code, err.value.details()
    assert text in err.value.details()
    # ... and the server goes on serving.
    x = images(1, 3)
    np.testing.assert_allclose(output(stub.ModelInfer(raw_request("cnn", {"image": x}), timeout=TIMEOUT)),
                               cnn.run(None, {"image": x})[0], rtol=1e-6, atol=1e-7)


def gru_chunk(seed, time=4):
    return np.random.default_rng(seed).standard_normal((1, time, 40)).astype(np.float32)


def test_stream_infer_sequences_match_an_in_process_stream(stub):
    session = rt.InferenceSession(GRU)
    chunks = [gru_chunk(s) for s in range(4)]
    stream = session.create_stream()
    want = [stream.process(c) for c in chunks]

    def requests():
        for i, c in enumerate(chunks):
            # Two sequences interleaved: "a" gets the chunks, "b" gets chunk 0 again and again.
            yield raw_request("gru", {"features": c}, sequence_id="a", sequence_start=(i == 0),
                              sequence_end=(i == len(chunks) - 1))
            yield raw_request("gru", {"features": chunks[0]}, sequence_id=77, sequence_start=True)
    answers = list(stub.ModelStreamInfer(requests(), timeout=TIMEOUT))
    assert len(answers) == 2 * len(chunks)
    assert all(not a.error_message for a in answers), [a.error_message for a in answers]
    for i in range(len(chunks)):
        a, b = answers[2 * i].infer_response, answers[2 * i + 1].infer_response
        assert a.parameters["sequence_id"].string_param == "a"
        np.testing.assert_allclose(output(a, 0), want[i][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(output(a, 1), want[i][1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(output(b, 0), want[0][0], rtol=1e-5, atol=1e-6)  # restarted every time


def test_stream_infer_keeps_each_sequence_in_order(stub):
    # Many sequences interleaved on one stream: each chunk must reach its sequence after the one
    # sent before it. Reads used to restart before a request was handed over, so the next request
    # (read on another gRPC thread) could overtake it: a chunk then ran on the wrong state, or
    # after its sequence_end ("already ended"). Seen in about 1 of 100 streams of the test above.
    session = rt.InferenceSession(GRU)
    sequences, length = 6, 16
    chunks = {s: [gru_chunk(1000 + 100 * s + i, time=2) for i in range(length)] for s in range(sequences)}
    want = {}
    for s in range(sequences):
        stream = session.create_stream()
        want[s] = [stream.process(c)[1] for c in chunks[s]]
    for rep in range(8):
        def requests():
            for i in range(length):
                for s in range(sequences):
                    yield raw_request("gru", {"features": chunks[s][i]}, sequence_id=f"order-{rep}-{s}",
                                      sequence_start=(i == 0), sequence_end=(i == length - 1))
        answers = list(stub.ModelStreamInfer(requests(), timeout=TIMEOUT))
        assert len(answers) == sequences * length
        for k, a in enumerate(answers):
            i, s = divmod(k, sequences)
            assert not a.error_message, (rep, s, i, a.error_message)
            assert a.infer_response.parameters["sequence_id"].string_param == f"order-{rep}-{s}"
            np.testing.assert_allclose(output(a.infer_response, 1), want[s][i], rtol=1e-5, atol=1e-6,
                                       err_msg=f"stream {rep}, sequence {s}, chunk {i}")


def test_stream_errors_answer_in_place_and_the_stream_goes_on(stub, cnn):
    x = images(1, 4)
    bad = raw_request("cnn", {"image": x})
    bad.model_name = "nope"
    reqs = [raw_request("cnn", {"image": x}), bad, raw_request("cnn", {"image": x})]
    answers = list(stub.ModelStreamInfer(iter(reqs), timeout=TIMEOUT))
    assert [bool(a.error_message) for a in answers] == [False, True, False]
    assert "NotFound" in answers[1].error_message and answers[1].infer_response.model_name == "nope"
    np.testing.assert_allclose(output(answers[2].infer_response), cnn.run(None, {"image": x})[0], rtol=1e-6,
                               atol=1e-7)


def test_client_that_vanishes_mid_stream_leaves_the_server_serving(server, stub, cnn):
    channel = grpc.insecure_channel(server["grpc"])
    other = pb_grpc.GRPCInferenceServiceStub(channel)
    gate = threading.Event()

    def requests():
        yield raw_request("cnn", {"image": images(1, 5)})
        gate.wait(TIMEOUT)  # keep the stream open until cancelled
    call = other.ModelStreamInfer(requests(), timeout=TIMEOUT)
    next(call)  # one answer arrived: the stream is live
    call.cancel()
    gate.set()
    channel.close()
    x = images(2, 6)
    np.testing.assert_allclose(output(stub.ModelInfer(raw_request("cnn", {"image": x}), timeout=TIMEOUT)),
                               cnn.run(None, {"image": x})[0], rtol=1e-6, atol=1e-7)


def test_full_queue_is_resource_exhausted_and_nothing_is_lost(cnn):
    # A long batch timeout keeps requests queued; a queue of 2 then refuses the rest at once.
    with GRPCServer(model_path=CNN, name="cnn", host="127.0.0.1", port=0, max_batch_size=64, batch_timeout_ms=300,
                    max_queue_size=2) as srv:
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        x = images(1, 7)
        futures = [stub.ModelInfer.future(raw_request("cnn", {"image": x}), timeout=TIMEOUT) for _ in range(12)]
        ok, exhausted = 0, 0
        want = cnn.run(None, {"image": x})[0]
        for f in futures:
            try:
                np.testing.assert_allclose(output(f.result()), want, rtol=1e-6, atol=1e-7)
                ok += 1
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
                exhausted += 1
        assert ok >= 1 and exhausted >= 1 and ok + exhausted == 12
        assert 'reason="queue_full"' in srv.metrics()
        channel.close()


def test_grpc_deadline_drops_a_queued_request_and_counts_it():
    # A 3 s batch timeout keeps a lone request queued past its 200 ms gRPC deadline: the server
    # takes the deadline as the request's timeout, drops it from the queue and counts it.
    with GRPCServer(model_path=CNN, name="cnn", host="127.0.0.1", port=0, max_batch_size=64,
                    batch_timeout_ms=3000) as srv:
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelInfer(raw_request("cnn", {"image": images(1, 8)}), timeout=0.2)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        deadline = time.monotonic() + TIMEOUT  # bounded wait for the server's own answer
        while 'reason="timeout"' not in srv.metrics() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert re.search(r'fail\w*\{[^}]*model="cnn"[^}]*reason="timeout"[^}]*\} 1', srv.metrics()), srv.metrics()
        # The model serves on.
        x = images(1, 9)
        assert output(stub.ModelInfer(raw_request("cnn", {"image": x}), timeout=TIMEOUT)).shape[0] == 1
        channel.close()


def test_grpc_server_class_limits_concurrent_rpcs(cnn):
    srv = GRPCServer(model_path=CNN, host="127.0.0.1", port=0, max_concurrent_rpcs=1)
    srv.start_background()
    try:
        assert srv.url == f"grpc://127.0.0.1:{srv.port}" and srv.http_port == -1
        assert srv.models == ["tiny_cnn"]
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        gate = threading.Event()

        def hold():
            gate.wait(TIMEOUT)
            return
            yield  # a generator that sends nothing until released
        held = stub.ModelStreamInfer(hold(), timeout=TIMEOUT)
        req = raw_request("tiny_cnn", {"image": images(1, 8)})
        codes = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # bounded: until the server has counted the held stream
            # A count of tries was not enough on a loaded machine: the held stream can take
            # longer to reach the server than 200 quick calls. And if it arrives while one of
            # these calls holds the one slot, the limit refuses the stream itself (CI saw every
            # call succeed for the whole timeout after that): open it again.
            if held.done():
                held = stub.ModelStreamInfer(hold(), timeout=TIMEOUT)
            try:
                stub.ModelInfer(req, timeout=TIMEOUT)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as err:
                codes.append(err.code())
                if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    break
        assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
        gate.set()
        assert list(held) == []
        channel.close()
    finally:
        srv.stop()


def test_cli_prints_its_listeners_and_stops_on_sigterm():
    proc, addresses = start_cli("--grpc-max-concurrent-rpcs", "8", "--sequence-idle-ms", "500")
    try:
        assert re.match(r"127\.0\.0\.1:\d+$", addresses["grpc"]) and addresses["grpc"] != "127.0.0.1:0"
        channel = grpc.insecure_channel(addresses["grpc"])
        assert pb_grpc.GRPCInferenceServiceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT).live
        channel.close()
    finally:
        stop_cli(proc)
    bad = subprocess.run([CLI, "serve", "--model", f"cnn={CNN}", "--sequence-idle-ms", "0"], capture_output=True,
                         text=True, timeout=TIMEOUT)
    assert bad.returncode == 2 and "--sequence-idle-ms" in bad.stderr
