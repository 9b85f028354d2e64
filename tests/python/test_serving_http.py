"""KServe v2 over HTTP against a real server on 127.0.0.1: outputs equal session.run(), every bad
input gets its status and a failure metric, concurrency loses and duplicates nothing, curl and
the CLI work unchanged."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import pyflame_rt as rt
from pyflame_rt.serving import ModelServer, MultiModelServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
GRU = os.path.join(REPO, "examples", "models", "tiny_gru.onnx")
TIMEOUT = 60


@pytest.fixture(scope="module")
def cnn_session():
    return rt.InferenceSession(CNN)


@pytest.fixture(scope="module")
def server(cnn_session):
    srv = MultiModelServer(models={"cnn": CNN, "gru": GRU, "shared": cnn_session}, host="127.0.0.1", port=0,
                           max_body_bytes=1 << 20)
    srv.start_background()
    yield srv
    srv.stop()


def request(server, method, path, body=None, headers=None):
    """(status, headers, body bytes) over a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def json_infer_body(x, name="image", outputs=None, **extra):
    body = {"id": "r", "inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}
    if outputs is not None:
        body["outputs"] = outputs
    body.update(extra)
    return json.dumps(body).encode()


def binary_infer_body(inputs, binary_output=True):
    """JSON header + raw tensors (the binary tensor extension); returns (body, headers)."""
    header = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": dt,
                          "parameters": {"binary_data_size": a.nbytes}} for n, a, dt in inputs],
              "parameters": {"binary_data_output": binary_output}}
    head = json.dumps(header).encode()
    body = head + b"".join(a.tobytes() for _, a, _ in inputs)
    return body, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def decode(headers, body):
    """Outputs by name from a JSON or binary response."""
    n = headers.get("Inference-Header-Content-Length")
    head = json.loads(body[:int(n)] if n else body)
    raw = body[int(n):] if n else b""
    out, offset = {}, 0
    for o in head["outputs"]:
        dtype = {"FP32": np.float32, "INT64": np.int64}[o["datatype"]]
        if "data" in o:
            out[o["name"]] = np.array(o["data"], dtype).reshape(o["shape"])
        else:
            size = o["parameters"]["binary_data_size"]
            out[o["name"]] = np.frombuffer(raw[offset:offset + size], dtype).reshape(o["shape"])
            offset += size
    assert offset == len(raw)
    return head, out


def metric(server, name, **labels):
    text = request(server, "GET", "/metrics")[2].decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{" + want + "}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def settled_metric(server, name, **labels):
    """The metric once no request of the model is in flight and it has not moved for 0.5 s (requests
    of earlier tests whose clients left may still be running)."""
    deadline = time.monotonic() + TIMEOUT
    value = metric(server, name, **labels)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = metric(server, name, **labels)
        if again == value and metric(server, "pyflame_inference_in_flight", **labels) == 0:
            return value
        value = again
    raise AssertionError(f"{name} {labels} did not settle in {TIMEOUT} s")


def images(n, seed):
    return np.random.default_rng(seed).random((n, 3, 32, 32), dtype=np.float32)


# --- routes -------------------------------------------------------------------------------

def test_health_server_and_model_metadata(server):
    assert request(server, "GET", "/v2/health/live")[0] == 200
    assert request(server, "GET", "/v2/health/ready")[0] == 200
    status, _, body = request(server, "GET", "/v2")
    meta = json.loads(body)
    assert status == 200 and meta["name"] == "pyflame_rt" and "binary_tensor_data" in meta["extensions"]
    for path in ("/v2/models/cnn", "/v2/models/cnn/versions/1"):
        status, headers, body = request(server, "GET", path)
        assert status == 200 and headers["Content-Type"] == "application/json"
        md = json.loads(body)
        assert md["name"] == "cnn" and md["versions"] == ["1"]
        assert md["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]
        assert md["outputs"] == [{"name": "probs", "datatype": "FP32", "shape": [-1, 10]}]
    assert request(server, "GET", "/v2/models/cnn/ready")[0] == 200
    assert request(server, "GET", "/v2/models/cnn/versions/1/ready")[0] == 200
    assert request(server, "GET", "/v2/models/cnn/versions/2/ready")[0] == 404
    assert request(server, "GET", "/v2/models/nope/ready")[0] == 404


def test_json_infer_matches_session_run(server, cnn_session):
    x = images(3, 1)
    want = cnn_session.run(None, {"image": x})[0]
    for model in ("cnn", "shared"):
        status, headers, body = request(server, "POST", f"/v2/models/{model}/infer", json_infer_body(x))
        assert status == 200, body
        head, out = decode(headers, body)
        assert head["model_name"] == model and head["model_version"] == "1" and head["id"] == "r"
        assert out["probs"].shape == (3, 10)
        np.testing.assert_allclose(out["probs"], want, rtol=1e-6, atol=1e-7)


def test_nested_json_data_is_accepted(server, cnn_session):
    x = images(1, 2)
    body = json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                                   "data": x.tolist()}]}).encode()
    status, headers, body = request(server, "POST", "/v2/models/cnn/versions/1/infer", body)
    assert status == 200, body
    np.testing.assert_allclose(decode(headers, body)[1]["probs"], cnn_session.run(None, {"image": x})[0],
                               rtol=1e-6, atol=1e-7)


def test_binary_tensors_both_ways(server, cnn_session):
    x = images(4, 3)
    body, headers = binary_infer_body([("image", x, "FP32")])
    status, rh, rb = request(server, "POST", "/v2/models/cnn/infer", body, headers)
    assert status == 200, rb
    assert rh["Content-Type"] == "application/octet-stream"
    head, out = decode(rh, rb)
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 4 * 10 * 4
    np.testing.assert_array_equal(out["probs"], cnn_session.run(None, {"image": x})[0])


def test_requested_output_and_per_output_binary(server):
    gru = rt.InferenceSession(GRU)
    f = np.random.default_rng(4).random((1, 7, 40), dtype=np.float32)
    h = np.zeros((1, 1, 64), np.float32)
    body = json.dumps({"inputs": [
        {"name": "features", "shape": [1, 7, 40], "datatype": "FP32", "data": f.ravel().tolist()},
        {"name": "h", "shape": [1, 1, 64], "datatype": "FP32", "data": h.ravel().tolist()}],
        "outputs": [{"name": "h_out", "parameters": {"binary_data": True}}]}).encode()
    status, rh, rb = request(server, "POST", "/v2/models/gru/infer", body)
    assert status == 200, rb
    head, out = decode(rh, rb)
    assert [o["name"] for o in head["outputs"]] == ["h_out"]
    np.testing.assert_allclose(out["h_out"], gru.run(["h_out"], {"features": f, "h": h})[0], rtol=1e-6, atol=1e-7)


def test_keep_alive_serves_many_requests_on_one_connection(server, cnn_session):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    conn.connect()
    sock = conn.sock
    for i in range(5):
        x = images(1, 10 + i)
        conn.request("POST", "/v2/models/cnn/infer", body=json_infer_body(x))
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        np.testing.assert_allclose(decode(dict(resp.getheaders()), body)[1]["probs"],
                                   cnn_session.run(None, {"image": x})[0], rtol=1e-6, atol=1e-7)
        assert conn.sock is sock  # the same TCP connection
    conn.close()


def test_metrics_count_requests_and_batches(server):
    before = metric(server, "pyflame_inference_request_success_total", model="cnn", version="1")
    request(server, "POST", "/v2/models/cnn/infer", json_infer_body(images(2, 5)))
    text = request(server, "GET", "/metrics")[2].decode()
    assert "# TYPE pyflame_inference_request_duration_us histogram" in text
    assert 'pyflame_inference_queue_duration_us_bucket{model="cnn",version="1",le="+Inf"}' in text
    assert metric(server, "pyflame_inference_request_success_total", model="cnn", version="1") == before + 1
    assert metric(server, "pyflame_inference_exec_count_total", model="cnn", version="1") >= 1


# --- bad input ------------------------------------------------------------------------------

def failures(server, reason, model="cnn"):
    return metric(server, "pyflame_inference_request_failure_total", model=model, version="1", reason=reason)


@pytest.mark.parametrize("body,fragment", [
    (b"{not json", "malformed JSON"),
    (json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "INT64",
                             "data": [0] * 3072}]}).encode(), "image"),                      # model wants FP32
    (json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FLOAT32",
                             "data": [0] * 3072}]}).encode(), "FLOAT32"),                    # not a KServe name
    (json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 16, 32], "datatype": "FP32",
                             "data": [0] * 1536}]}).encode(), "image"),                      # wrong shape
    (json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                             "data": [0] * 3071}]}).encode(), "3071"),                       # element count
    (json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                             "data": [0] * 3072}], "outputs": [{"name": "logits"}]}).encode(), "logits"),
    (json.dumps({"inputs": [{"name": "pixels", "shape": [1, 3, 32, 32], "datatype": "FP32",
                             "data": [0] * 3072}]}).encode(), "pixels"),                     # unknown input
    (json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                             "data": [0] * 3072}], "parameters": {"timeout": "soon"}}).encode(), "timeout"),
])
def test_bad_requests_are_400_with_a_message_and_a_metric(server, body, fragment):
    before = failures(server, "invalid_argument")
    status, headers, rb = request(server, "POST", "/v2/models/cnn/infer", body)
    assert status == 400, rb
    assert headers["Content-Type"] == "application/json"
    assert fragment in json.loads(rb)["error"]
    assert failures(server, "invalid_argument") == before + 1
    assert request(server, "POST", "/v2/models/cnn/infer", json_infer_body(images(1, 0)))[0] == 200


def test_binary_size_mismatches_are_400(server):
    x = images(1, 6)
    body, headers = binary_infer_body([("image", x, "FP32")])
    cases = [
        (body[:-4], headers, "exceeds"),                                           # body shorter than declared
        (body + b"\0" * 8, headers, "after the JSON header"),                       # extra bytes
        (body, {**headers, "Inference-Header-Content-Length": "999999"}, "exceeds the body"),
        (body, {**headers, "Inference-Header-Content-Length": "12x"}, "not a number"),
    ]
    wrong_size = json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                                         "parameters": {"binary_data_size": 100}}]}).encode()
    cases.append((wrong_size + b"\0" * 100, {"Inference-Header-Content-Length": str(len(wrong_size))},
                  "needs 12288 bytes, got 100"))
    for b, h, fragment in cases:
        status, _, rb = request(server, "POST", "/v2/models/cnn/infer", b, h)
        assert status == 400, rb
        assert fragment in json.loads(rb)["error"], rb


def test_unknown_model_version_and_route_are_404(server):
    before = metric(server, "pyflame_server_request_failure_total", reason="not_found")
    status, _, body = request(server, "POST", "/v2/models/nope/infer", json_infer_body(images(1, 0)))
    assert status == 404 and "'nope'" in json.loads(body)["error"]
    assert metric(server, "pyflame_server_request_failure_total", reason="not_found") == before + 1
    status, _, body = request(server, "POST", "/v2/models/cnn/versions/3/infer", json_infer_body(images(1, 0)))
    assert status == 404 and "version '3'" in json.loads(body)["error"]
    assert request(server, "GET", "/v2/models/nope")[0] == 404
    assert request(server, "GET", "/v3/anything")[0] == 404
    assert request(server, "GET", "/v2/models/cnn/infer")[0] == 405


def test_oversized_body_is_413_and_counted(server):
    before = failures(server, "body_too_large")
    big = b"{" + b" " * (2 << 20) + b"}"
    status, _, body = request(server, "POST", "/v2/models/cnn/infer", big)
    assert status == 413
    assert "limit" in json.loads(body)["error"]
    assert failures(server, "body_too_large") == before + 1
    assert request(server, "GET", "/v2/health/live")[0] == 200


def test_vanishing_and_silent_clients_do_not_hurt_others(server, cnn_session):
    # A client that sends half a request and leaves, one that leaves before its answer, and one
    # that stays silent: the server keeps answering everyone else.
    half = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    half.sendall(b"POST /v2/models/cnn/infer HTTP/1.1\r\nContent-Length: 5000\r\n\r\n{\"inp")
    half.close()
    gone = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    body = json_infer_body(images(8, 7))
    gone.sendall(b"POST /v2/models/cnn/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    gone.close()
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    x = images(1, 8)
    status, headers, rb = request(server, "POST", "/v2/models/cnn/infer", json_infer_body(x))
    assert status == 200
    np.testing.assert_allclose(decode(headers, rb)[1]["probs"], cnn_session.run(None, {"image": x})[0],
                               rtol=1e-6, atol=1e-7)
    silent.close()


def test_repository_index_unload_and_load(server):
    status, _, body = request(server, "POST", "/v2/repository/index")
    index = {(e["name"], e.get("version")): e["state"] for e in json.loads(body)}
    assert status == 200 and index[("cnn", "1")] == "READY"
    assert request(server, "POST", "/v2/repository/models/gru/unload")[0] == 200
    assert request(server, "GET", "/v2/models/gru/ready")[0] == 404
    rows = json.loads(request(server, "POST", "/v2/repository/index", b"{}")[2])
    assert {"name": "gru", "state": "UNAVAILABLE", "reason": "unloaded"} in rows
    ready_only = json.loads(request(server, "POST", "/v2/repository/index", b'{"ready": true}')[2])
    assert all(r["state"] == "READY" for r in ready_only) and "gru" not in [r["name"] for r in ready_only]
    assert request(server, "POST", "/v2/repository/models/gru/unload")[0] == 404
    assert request(server, "POST", "/v2/repository/models/gru/load")[0] == 200
    assert request(server, "GET", "/v2/models/gru/ready")[0] == 200
    status, _, body = request(server, "POST", "/v2/repository/models/never/load")
    assert status == 404 and "never" in json.loads(body)["error"]


# --- load and concurrency -------------------------------------------------------------------

def test_many_concurrent_clients_get_their_own_answers_once(server, cnn_session):
    # The previous test's client that left before its answer may still be counted: wait for quiet.
    before = settled_metric(server, "pyflame_inference_request_success_total", model="cnn", version="1")
    clients, per_client = 16, 12
    results, errors = {}, []
    lock = threading.Lock()

    def client(c):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        try:
            for i in range(per_client):
                x = images(1 + (i % 3), 1000 * c + i)
                body, headers = binary_infer_body([("image", x, "FP32")], binary_output=bool(i % 2))
                conn.request("POST", "/v2/models/cnn/infer", body=body, headers=headers)
                resp = conn.getresponse()
                rb = resp.read()
                if resp.status != 200:
                    errors.append((resp.status, rb))
                    continue
                with lock:
                    results[(c, i)] = (x, decode(dict(resp.getheaders()), rb)[1]["probs"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not errors
    assert len(results) == clients * per_client
    for x, y in results.values():
        np.testing.assert_allclose(y, cnn_session.run(None, {"image": x})[0], rtol=1e-5, atol=1e-6)
    after = metric(server, "pyflame_inference_request_success_total", model="cnn", version="1")
    assert after == before + clients * per_client  # each answered exactly once


def test_full_queue_is_503_and_the_rest_are_answered(cnn_session):
    srv = ModelServer(CNN, name="cnn", host="127.0.0.1", port=0, max_batch_size=1, max_queue_size=1)
    srv.start_background()
    try:
        codes, lock = [], threading.Lock()
        x = images(64, 9)  # a slow batch: requests pile up behind it
        want = cnn_session.run(None, {"image": x})[0]
        body, headers = binary_infer_body([("image", x, "FP32")])

        def client():
            status, rh, rb = request(srv, "POST", "/v2/models/cnn/infer", body, headers)
            if status == 200:
                np.testing.assert_allclose(decode(rh, rb)[1]["probs"], want, rtol=1e-5, atol=1e-6)
            else:
                assert "queue" in json.loads(rb)["error"]
            with lock:
                codes.append(status)

        for _ in range(5):  # bounded: a round where requests overlap shows the 503
            threads = [threading.Thread(target=client) for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT)
            if 503 in codes:
                break
        assert set(codes) <= {200, 503} and 503 in codes and 200 in codes
        assert metric(srv, "pyflame_inference_request_failure_total", model="cnn", version="1",
                      reason="queue_full") == codes.count(503)
    finally:
        srv.stop()


# --- real clients: curl and the CLI ---------------------------------------------------------

def test_curl(server, cnn_session, tmp_path):
    x = images(1, 11)
    path = tmp_path / "req.json"
    path.write_bytes(json_infer_body(x))
    # curl is the client here, not code under test: it must not inherit the sanitizer runtime
    # that `make sanitize-asan-python` preloads into the interpreter. With libasan preloaded,
    # Debian's curl hangs in its first setlocale(), waiting on glibc's locale lock (gdb), and never
    # sends the request. The server runs in this process, under ASan either way.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run(["curl", "-s", "-f", "-X", "POST", "--data-binary", f"@{path}",
                          f"{server.url}/v2/models/cnn/infer"], capture_output=True, timeout=TIMEOUT, check=True,
                         env=env)
    np.testing.assert_allclose(np.array(json.loads(out.stdout)["outputs"][0]["data"], np.float32).reshape(1, 10),
                               cnn_session.run(None, {"image": x})[0], rtol=1e-6, atol=1e-7)
    live = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/v2/health/live"],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert live.stdout == "200"


def test_cli_serves_until_sigterm(cnn_session):
    proc = subprocess.Popen([CLI, "serve", "--model", f"cnn={CNN}", "--http-port", "0", "--host", "127.0.0.1",
                             "--max-batch-size", "4", "--grpc-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for _ in range(10):
            line = proc.stdout.readline()
            m = re.match(r"serving http .*:(\d+)$", line.strip())
            if m:
                port = int(m.group(1))
            if line.strip() == "ready" or not line:
                break
        assert port, "the server printed no HTTP port"
        x = images(2, 12)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        conn.request("POST", "/v2/models/cnn/infer", body=json_infer_body(x))
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        np.testing.assert_allclose(decode(dict(resp.getheaders()), body)[1]["probs"],
                                   cnn_session.run(None, {"image": x})[0], rtol=1e-6, atol=1e-7)
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
        assert "not available" not in proc.stderr.read()  # gRPC is served (tests/python/test_serving_grpc.py)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)


def test_cli_rejects_bad_options():
    out = subprocess.run([CLI, "serve", "--model", "nameonly"], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 2 and "NAME=PATH" in out.stderr
    out = subprocess.run([CLI, "serve", "--model", "cnn=/no/such.onnx", "--http-port", "0"], capture_output=True,
                         text=True, timeout=TIMEOUT)
    assert out.returncode == 1 and "/no/such.onnx" in out.stderr


def test_model_server_start_blocks_until_stop():
    srv = ModelServer(CNN, host="127.0.0.1", port=0)
    t = threading.Thread(target=srv.start)
    t.start()
    try:
        for _ in range(600):  # bounded wait for the background start
            if srv.port:
                break
            threading.Event().wait(0.1)
        assert srv.models == ["tiny_cnn"]
        port = srv.port
        with urllib.request.urlopen(f"{srv.url}/v2/models/tiny_cnn/ready", timeout=TIMEOUT) as r:
            assert r.status == 200
    finally:
        srv.stop()
        t.join(TIMEOUT)
    assert not t.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)  # no longer listening


def test_bytes_and_int64_tensors_in_json_and_binary(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["t"]), helper.make_node("Add", ["a", "a"], ["b"])], "g",
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["n"]),
         helper.make_tensor_value_info("a", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("t", TensorProto.STRING, ["n"]),
         helper.make_tensor_value_info("b", TensorProto.INT64, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "strings.onnx"
    onnx.save(model, str(path))
    with ModelServer(str(path), name="strings", host="127.0.0.1", port=0) as srv:
        words = ["ab", "", "h\u00e9llo"]
        body = json.dumps({"inputs": [{"name": "s", "shape": [3], "datatype": "BYTES", "data": words},
                                      {"name": "a", "shape": [3], "datatype": "INT64", "data": [1, -2, 2 ** 40]}]})
        status, _, rb = request(srv, "POST", "/v2/models/strings/infer", body.encode())
        assert status == 200, rb
        outs = {o["name"]: o for o in json.loads(rb)["outputs"]}
        assert outs["t"]["datatype"] == "BYTES" and outs["t"]["data"] == words
        assert outs["b"]["datatype"] == "INT64" and outs["b"]["data"] == [2, -4, 2 ** 41]
        # Binary: BYTES elements are a 4-byte little-endian length, then the bytes.
        raw = b"".join(len(w.encode()).to_bytes(4, "little") + w.encode() for w in words)
        a = np.array([5, 6, 7], np.int64)
        head = json.dumps({"inputs": [
            {"name": "s", "shape": [3], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}},
            {"name": "a", "shape": [3], "datatype": "INT64", "parameters": {"binary_data_size": a.nbytes}}],
            "outputs": [{"name": "t", "parameters": {"binary_data": True}}, {"name": "b"}]}).encode()
        status, rh, rb = request(srv, "POST", "/v2/models/strings/infer", head + raw + a.tobytes(),
                                 {"Inference-Header-Content-Length": str(len(head))})
        assert status == 200, rb
        n = int(rh["Inference-Header-Content-Length"])
        header = json.loads(rb[:n])
        assert header["outputs"][0]["parameters"]["binary_data_size"] == len(raw)
        assert rb[n:] == raw
        assert header["outputs"][1]["data"] == [10, 12, 14]
        bad = json.dumps({"inputs": [{"name": "s", "shape": [3], "datatype": "BYTES", "data": [1, 2, 3]},
                                     {"name": "a", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]}]})
        status, _, rb = request(srv, "POST", "/v2/models/strings/infer", bad.encode())
        assert status == 400 and "expected a string" in json.loads(rb)["error"]


def test_priority_and_timeout_parameters_are_accepted(server, cnn_session):
    x = images(1, 13)
    status, headers, rb = request(server, "POST", "/v2/models/cnn/infer",
                                  json_infer_body(x, parameters={"priority": 1, "timeout": 5000000}))
    assert status == 200, rb
    np.testing.assert_allclose(decode(headers, rb)[1]["probs"], cnn_session.run(None, {"image": x})[0],
                               rtol=1e-6, atol=1e-7)
    status, _, rb = request(server, "POST", "/v2/models/cnn/infer",
                            json_infer_body(x, parameters={"sequence_id": 7, "sequence_start": True}))
    assert status == 501 and "sequence" in json.loads(rb)["error"]
