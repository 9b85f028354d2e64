"""A KServe v2 inference client for PyFlameRT servers (or any KServe v2 / Triton server).

    from pyflame_rt.client import InferenceClient
    client = InferenceClient("http://127.0.0.1:8000", model="tiny_cnn")   # or "grpc://127.0.0.1:8001"
    out = client.infer({"image": x})                       # {"probs": ndarray}
    fut = client.infer_async({"image": x})                 # concurrent.futures.Future
    outs = client.infer_batch([{"image": a}, {"image": b}])  # requests in flight together

HTTP uses the binary tensor extension by default (raw bytes after a JSON header, no per-element
JSON), over keep-alive connections from http.client (one per thread); `binary=False` sends
JSON `data`. gRPC uses stubs generated at build time from the server's own .proto and sends
raw_input_contents. Server errors raise the pyflame_rt exception of their kind (InvalidArgument,
NotFound, ResourceExhausted, Unavailable, DeadlineExceeded, ...), with the server's message.
"""

import concurrent.futures
import http.client
import json
import threading
import urllib.parse

import numpy as np

from . import errors

__all__ = ["InferenceClient"]

# KServe datatype names <-> numpy dtypes (BYTES is numpy object arrays of bytes/str).
_DATATYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}
_BY_NUMPY = {np.dtype(v): k for k, v in _DATATYPES.items()}

_HTTP_ERRORS = {400: errors.InvalidArgument, 404: errors.NotFound, 501: errors.NotImplementedFailure,
                503: errors.Unavailable, 504: errors.DeadlineExceeded}


def _datatype(array):
    if array.dtype == object or array.dtype.kind in "SU":
        return "BYTES"
    try:
        return _BY_NUMPY[array.dtype]
    except KeyError:
        raise errors.InvalidArgument(f"numpy dtype {array.dtype} has no KServe datatype") from None


def _to_bytes(array):
    """Raw little-endian row-major bytes (BYTES: a 4-byte length before each element)."""
    if _datatype(array) != "BYTES":
        return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    parts = []
    for item in array.reshape(-1):
        b = item.encode() if isinstance(item, str) else bytes(item)
        parts.append(len(b).to_bytes(4, "little") + b)
    return b"".join(parts)


def _from_bytes(raw, datatype, shape):
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            n = int.from_bytes(raw[pos:pos + 4], "little")
            items.append(raw[pos + 4:pos + 4 + n])
            pos += 4 + n
        return np.array(items, dtype=object).reshape(shape)
    dtype = np.dtype(_DATATYPES[datatype]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _as_feed(feed):
    out = {}
    for name, value in feed.items():
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
        out[name] = array
    return out


class _HttpTransport:
    def __init__(self, host, port, timeout, binary):
        self._host, self._port, self._timeout, self._binary = host, port, timeout, binary
        self._local = threading.local()
        self._all = []  # every thread's connection, so close() can close them all
        self._all_lock = threading.Lock()

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _request(self, method, path, body=None, headers=None):
        # One retry on a connection the server closed while idle (keep-alive timeout).
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._local.conn = None
                with self._all_lock:
                    self._all.remove(conn)
                if attempt:
                    raise

    @staticmethod
    def _raise(status, body):
        try:
            message = json.loads(body).get("error", body.decode(errors="replace"))
        except (ValueError, AttributeError):
            message = body.decode(errors="replace")
        raise _HTTP_ERRORS.get(status, errors.Fail)(f"HTTP {status}: {message}")

    def get(self, path):
        status, _, body = self._request("GET", path)
        return status, body

    def post_json(self, path, payload):
        status, _, body = self._request("POST", path, json.dumps(payload).encode(),
                                        {"Content-Type": "application/json"})
        if status != 200:
            self._raise(status, body)
        return json.loads(body) if body else {}

    def infer(self, model, version, feed, outputs, parameters, request_id):
        path = f"/v2/models/{urllib.parse.quote(model)}"
        if version:
            path += f"/versions/{urllib.parse.quote(version)}"
        path += "/infer"
        header = {"inputs": []}
        if request_id:
            header["id"] = request_id
        if parameters:
            header["parameters"] = dict(parameters)
        blobs = []
        for name, array in feed.items():
            entry = {"name": name, "shape": list(array.shape), "datatype": _datatype(array)}
            if self._binary:
                raw = _to_bytes(array)
                entry["parameters"] = {"binary_data_size": len(raw)}
                blobs.append(raw)
            else:
                entry["data"] = (array.astype(str) if entry["datatype"] == "BYTES" else array).reshape(-1).tolist()
            header["inputs"].append(entry)
        if outputs:
            header["outputs"] = [{"name": o, "parameters": {"binary_data": self._binary}} for o in outputs]
        elif self._binary:
            header.setdefault("parameters", {})["binary_data_output"] = True
        head = json.dumps(header).encode()
        if self._binary:
            body = head + b"".join(blobs)
            headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
        else:
            body, headers = head, {"Content-Type": "application/json"}
        status, resp_headers, resp = self._request("POST", path, body, headers)
        if status != 200:
            self._raise(status, resp)
        json_len = int(resp_headers.get("inference-header-content-length", len(resp)))
        answer = json.loads(resp[:json_len])
        raw, pos, result = resp[json_len:], 0, {}
        for out in answer.get("outputs", []):
            size = (out.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                result[out["name"]] = _from_bytes(raw[pos:pos + size], out["datatype"], out["shape"])
                pos += size
            else:
                data = out["data"]
                dtype = object if out["datatype"] == "BYTES" else _DATATYPES[out["datatype"]]
                result[out["name"]] = np.array(data, dtype=dtype).reshape(out["shape"])
        return result

    def live(self):
        return self.get("/v2/health/live")[0] == 200

    def ready(self):
        return self.get("/v2/health/ready")[0] == 200

    def model_metadata(self, model):
        status, body = self.get(f"/v2/models/{urllib.parse.quote(model)}")
        if status != 200:
            self._raise(status, body)
        return json.loads(body)

    def model_names(self):
        return [m["name"] for m in self.post_json("/v2/repository/index", {}) if m.get("state", "READY") == "READY"]

    def close(self):
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class _GrpcTransport:
    def __init__(self, target, timeout):
        import grpc  # python3-grpcio; imported here so HTTP users do not need it
        from . import grpc_service_pb2 as pb
        from . import grpc_service_pb2_grpc as pb_grpc
        self._grpc, self._pb, self._timeout = grpc, pb, timeout
        self._channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20),
                                                                ("grpc.max_send_message_length", 64 << 20)])
        self.stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    def _error(self, err):
        codes = self._grpc.StatusCode
        kinds = {codes.INVALID_ARGUMENT: errors.InvalidArgument, codes.NOT_FOUND: errors.NotFound,
                 codes.RESOURCE_EXHAUSTED: errors.ResourceExhausted, codes.UNAVAILABLE: errors.Unavailable,
                 codes.DEADLINE_EXCEEDED: errors.DeadlineExceeded, codes.UNIMPLEMENTED: errors.NotImplementedFailure}
        return kinds.get(err.code(), errors.Fail)(f"gRPC {err.code().name}: {err.details()}")

    def request(self, model, version, feed, outputs, parameters, request_id):
        pb = self._pb
        req = pb.ModelInferRequest(model_name=model, model_version=version or "", id=request_id or "")
        for key, value in (parameters or {}).items():
            param = req.parameters[key]
            if isinstance(value, bool):
                param.bool_param = value
            elif isinstance(value, int):
                param.int64_param = value
            else:
                param.string_param = str(value)
        for name, array in feed.items():
            tensor = req.inputs.add(name=name, datatype=_datatype(array))
            tensor.shape.extend(array.shape)
            req.raw_input_contents.append(_to_bytes(array))
        for o in outputs or ():
            req.outputs.add(name=o)
        return req

    def decode(self, resp):
        result = {}
        for i, out in enumerate(resp.outputs):
            if i < len(resp.raw_output_contents):
                result[out.name] = _from_bytes(resp.raw_output_contents[i], out.datatype, list(out.shape))
            else:
                result[out.name] = self._from_contents(out)
        return result

    @staticmethod
    def _from_contents(out):
        c = out.contents
        field = {"BOOL": c.bool_contents, "INT8": c.int_contents, "INT16": c.int_contents, "INT32": c.int_contents,
                 "INT64": c.int64_contents, "UINT8": c.uint_contents, "UINT16": c.uint_contents,
                 "UINT32": c.uint_contents, "UINT64": c.uint64_contents, "FP32": c.fp32_contents,
                 "FP64": c.fp64_contents}.get(out.datatype)
        if field is None:
            return np.array(list(c.bytes_contents), dtype=object).reshape(list(out.shape))
        return np.array(list(field), dtype=_DATATYPES[out.datatype]).reshape(list(out.shape))

    def infer(self, *args):
        try:
            return self.decode(self.stub.ModelInfer(self.request(*args), timeout=self._timeout))
        except self._grpc.RpcError as err:
            raise self._error(err) from None

    def infer_async(self, *args):
        future = concurrent.futures.Future()
        call = self.stub.ModelInfer.future(self.request(*args), timeout=self._timeout)

        def done(c):
            try:
                future.set_result(self.decode(c.result()))
            except self._grpc.RpcError as err:
                future.set_exception(self._error(err))
            except Exception as err:  # a decoding failure still reaches the caller
                future.set_exception(err)
        call.add_done_callback(done)
        return future

    def live(self):
        return self.stub.ServerLive(self._pb.ServerLiveRequest(), timeout=self._timeout).live

    def ready(self):
        return self.stub.ServerReady(self._pb.ServerReadyRequest(), timeout=self._timeout).ready

    def model_metadata(self, model):
        try:
            m = self.stub.ModelMetadata(self._pb.ModelMetadataRequest(name=model), timeout=self._timeout)
        except self._grpc.RpcError as err:
            raise self._error(err) from None
        tensors = lambda ts: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in ts]  # noqa
        return {"name": m.name, "versions": list(m.versions), "platform": m.platform,
                "inputs": tensors(m.inputs), "outputs": tensors(m.outputs)}

    def model_names(self):
        index = self.stub.RepositoryIndex(self._pb.RepositoryIndexRequest(ready=True), timeout=self._timeout)
        return [m.name for m in index.models]

    def close(self):
        self._channel.close()


class InferenceClient:
    """infer / infer_async / infer_batch against one server, over http:// or grpc://."""

    def __init__(self, url, model=None, version="", timeout=30.0, binary=True, max_workers=32):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "grpc") or not parsed.hostname:
            raise errors.InvalidArgument(f"InferenceClient: expected http://HOST:PORT or grpc://HOST:PORT, got {url!r}")
        self.url, self.version, self.timeout = url, version, timeout
        if parsed.scheme == "http":
            self._transport = _HttpTransport(parsed.hostname, parsed.port or 8000, timeout, binary)
        else:
            self._transport = _GrpcTransport(f"{parsed.hostname}:{parsed.port or 8001}", timeout)
        self._model = model
        self._max_workers = max_workers
        self._pool = None
        self._pool_lock = threading.Lock()

    @property
    def model(self):
        """The model requests go to: given, or the server's only model."""
        if self._model is None:
            names = self._transport.model_names()
            if len(names) != 1:
                raise errors.InvalidArgument(
                    f"InferenceClient: the server has models {names}; pass model= to choose one")
            self._model = names[0]
        return self._model

    def _args(self, feed, outputs, parameters, request_id, model):
        return (model or self.model, self.version, _as_feed(feed), list(outputs or ()), parameters, request_id)

    def infer(self, feed, outputs=None, parameters=None, request_id=None, model=None):
        """Runs one request; returns {output name: ndarray}."""
        return self._transport.infer(*self._args(feed, outputs, parameters, request_id, model))

    def infer_async(self, feed, outputs=None, parameters=None, request_id=None, model=None):
        """Sends one request; returns a concurrent.futures.Future of infer()'s result."""
        args = self._args(feed, outputs, parameters, request_id, model)
        if isinstance(self._transport, _GrpcTransport):
            return self._transport.infer_async(*args)
        return self._executor().submit(self._transport.infer, *args)

    def infer_batch(self, feeds, outputs=None, parameters=None, model=None):
        """Sends every feed at once (the server batches them); results in feed order."""
        futures = [self.infer_async(f, outputs, parameters, None, model) for f in feeds]
        return [f.result() for f in futures]

    def is_live(self):
        return self._transport.live()

    def is_ready(self):
        return self._transport.ready()

    def model_metadata(self, model=None):
        return self._transport.model_metadata(model or self.model)

    def _executor(self):
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self._max_workers,
                                                                   thread_name_prefix="pyflame-rt-client")
            return self._pool

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
