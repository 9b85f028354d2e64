"""pyflame_rt.client.InferenceClient over http:// and grpc:// against one real server, and
pyflame_rt.serving.fastapi_app through FastAPI's test client: the same answers as session.run()."""
import concurrent.futures
import os

import numpy as np
import pytest

import pyflame_rt as rt
from pyflame_rt.client import InferenceClient
from pyflame_rt.serving import GRPCServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
GRU = os.path.join(REPO, "examples", "models", "tiny_gru.onnx")


@pytest.fixture(scope="module")
def server():
    srv = GRPCServer(models={"cnn": CNN, "gru": GRU}, host="127.0.0.1", port=0, http_port=0, max_batch_size=8)
    srv.start_background()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cnn():
    return rt.InferenceSession(CNN)


@pytest.fixture(params=["http", "grpc"])
def client(request, server):
    url = f"http://127.0.0.1:{server.http_port}" if request.param == "http" else server.url
    c = InferenceClient(url, model="cnn", timeout=60)
    yield c
    c.close()


def images(n, seed):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)


def test_infer_async_and_batch_equal_session_run(client, cnn):
    x = images(2, 0)
    out = client.infer({"image": x})
    assert list(out) == ["probs"]
    np.testing.assert_allclose(out["probs"], cnn.run(None, {"image": x})[0], rtol=1e-6, atol=1e-7)
    future = client.infer_async({"image": x}, outputs=["probs"])
    assert isinstance(future, concurrent.futures.Future)
    np.testing.assert_allclose(future.result(timeout=60)["probs"], out["probs"], rtol=1e-6, atol=1e-7)
    feeds = [{"image": images(1, s)} for s in range(10)]
    for feed, got in zip(feeds, client.infer_batch(feeds)):
        np.testing.assert_allclose(got["probs"], cnn.run(None, feed)[0], rtol=1e-6, atol=1e-7)
    assert client.is_live() and client.is_ready()
    assert [t["name"] for t in client.model_metadata()["inputs"]] == ["image"]


def test_errors_raise_the_kind_of_failure(client):
    with pytest.raises(rt.NotFound):
        client.infer({"image": images(1, 1)}, model="nope")
    with pytest.raises(rt.InvalidArgument, match="image"):
        client.infer({"image": np.zeros((1, 4, 32, 32), np.float32)})
    with pytest.raises(rt.InvalidArgument):
        client.infer({"image": images(1, 1)}, outputs=["logits"])
    with pytest.raises(rt.NotFound):
        client.infer_async({"image": images(1, 1)}, model="nope").result(timeout=60)


def test_sequence_parameters_reach_the_stream(server):
    # Sequences are served over gRPC (and ZeroMQ); the parameters pass through the client.
    client = InferenceClient(server.url, timeout=60)
    gru = rt.InferenceSession(GRU).create_stream()
    chunks = [np.random.default_rng(s).standard_normal((1, 2, 40)).astype(np.float32) for s in range(3)]
    want = [gru.process(c)[0] for c in chunks]
    for i, c in enumerate(chunks):
        got = client.infer({"features": c}, model="gru", outputs=["embedding"],
                           parameters={"sequence_id": "c1", "sequence_start": i == 0})
        np.testing.assert_allclose(got["embedding"], want[i], rtol=1e-5, atol=1e-6)
    client.close()


def test_default_model_and_bad_urls(server):
    with pytest.raises(rt.InvalidArgument, match="pass model="):
        InferenceClient(server.url).infer({"image": images(1, 2)})
    with pytest.raises(rt.InvalidArgument, match="http://HOST:PORT"):
        InferenceClient("ftp://127.0.0.1:1")
    single = GRPCServer(model_path=CNN, host="127.0.0.1", port=0)
    with single:
        c = InferenceClient(single.url)
        assert c.model == "tiny_cnn" and list(c.infer({"image": images(1, 3)})) == ["probs"]
        c.close()


def test_json_tensors_over_http(server, cnn):
    c = InferenceClient(f"http://127.0.0.1:{server.http_port}", model="cnn", binary=False)
    x = images(1, 4)
    np.testing.assert_allclose(c.infer({"image": x})["probs"], cnn.run(None, {"image": x})[0], rtol=1e-5, atol=1e-6)
    c.close()


def test_fastapi_app_serves_the_same_routes(cnn):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from pyflame_rt.serving import fastapi_app
    app = fastapi_app({"cnn": CNN, "shared": cnn})
    http = TestClient(app)
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2").json()["name"] == "pyflame_rt"
    meta = http.get("/v2/models/cnn").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]
    assert http.get("/v2/models/cnn/ready").status_code == 200
    assert http.get("/v2/models/nope/ready").status_code == 404
    x = images(2, 5)
    want = cnn.run(None, {"image": x})[0]
    body = {"id": "q", "inputs": [{"name": "image", "shape": [2, 3, 32, 32], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}
    r = http.post("/v2/models/shared/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert r.json()["id"] == "q" and out["shape"] == [2, 10]
    np.testing.assert_allclose(np.array(out["data"], np.float32).reshape(2, 10), want, rtol=1e-5, atol=1e-6)
    # The binary extension, as the C++ server speaks it.
    import json
    head = json.dumps({"inputs": [{"name": "image", "shape": [2, 3, 32, 32], "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    r = http.post("/v2/models/cnn/infer", content=head + x.tobytes(),
                  headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 200
    n = int(r.headers["inference-header-content-length"])
    np.testing.assert_allclose(np.frombuffer(r.content[n:], np.float32).reshape(2, 10), want, rtol=1e-6, atol=1e-7)
    # Bad input: named, 400; unknown model: 404.
    bad = dict(body, inputs=[dict(body["inputs"][0], shape=[2, 3, 32, 31])])
    r = http.post("/v2/models/cnn/infer", json=bad)
    assert r.status_code == 400 and "image" in r.json()["error"]
    assert http.post("/v2/models/nope/infer", json=body).status_code == 404
    assert http.post("/v2/models/cnn/infer", content=b"{nope").status_code == 400


def test_fastapi_missing_names_the_package(monkeypatch):
    import builtins
    import pyflame_rt.fastapi_serving as fs
    real_import = builtins.__import__

    def no_fastapi(name, *args, **kwargs):
        if name == "fastapi" or name.startswith("fastapi."):
            raise ImportError("No module named 'fastapi'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_fastapi)
    with pytest.raises(ImportError, match="python3-fastapi"):
        fs.fastapi_app({"cnn": CNN})
