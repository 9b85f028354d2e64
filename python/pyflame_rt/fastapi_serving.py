"""fastapi_app(models): the KServe v2 REST routes as a FastAPI app, for users who embed inference
in their own Python service (mount it, add their own routes and middleware).

    from pyflame_rt.serving import fastapi_app
    app = fastapi_app({"tiny_cnn": "tiny_cnn.onnx"})     # paths or InferenceSessions
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Routes as the C++ server: /v2/health/live, /v2/health/ready, /v2, /v2/models/{m}[/versions/{v}],
.../ready, .../infer (JSON tensors or the binary extension, Inference-Header-Content-Length),
/v2/repository/index. Inference runs session.run() on FastAPI's worker threads (the handlers
are plain functions), never on the event loop. For dynamic batching, many connections and
gRPC, use the C++ server (ModelServer, GRPCServer). Needs Debian's python3-fastapi.
"""
import json

import numpy as np

from . import errors

_ONNX_TO_KSERVE = {
    "tensor(bool)": "BOOL", "tensor(uint8)": "UINT8", "tensor(uint16)": "UINT16", "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64", "tensor(int8)": "INT8", "tensor(int16)": "INT16", "tensor(int32)": "INT32",
    "tensor(int64)": "INT64", "tensor(float16)": "FP16", "tensor(float)": "FP32", "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
_KSERVE_TO_NUMPY = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
    "FP32": np.float32, "FP64": np.float64,
}
_NUMPY_TO_KSERVE = {np.dtype(v): k for k, v in _KSERVE_TO_NUMPY.items()}


def _import_fastapi():
    try:
        import fastapi
        return fastapi
    except ImportError as err:
        raise ImportError("pyflame_rt.serving.fastapi_app needs FastAPI: install Debian's python3-fastapi "
                          "(apt-get install python3-fastapi)") from err


def _shape(dims):
    return [d if isinstance(d, int) and d >= 0 else -1 for d in dims]


def _decode_input(entry, raw, pos):
    """One request input as an ndarray; returns (array, new raw position)."""
    name = entry.get("name")
    datatype = entry.get("datatype")
    shape = entry.get("shape")
    if not isinstance(name, str) or not isinstance(shape, list) or datatype not in _KSERVE_TO_NUMPY:
        raise errors.InvalidArgument(f"input {entry.get('name')!r}: needs name, shape and a KServe datatype "
                                     f"(BYTES is not served here), got datatype {datatype!r}")
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise errors.InvalidArgument(f"input '{name}': shape {shape} has a negative or non-integer dim")
    dtype = np.dtype(_KSERVE_TO_NUMPY[datatype]).newbyteorder("<")
    count = int(np.prod(shape)) if shape else 1
    size = (entry.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if size != count * dtype.itemsize or pos + size > len(raw):
            raise errors.InvalidArgument(f"input '{name}': {datatype}{shape} needs {count * dtype.itemsize} bytes, "
                                         f"binary_data_size is {size} with {len(raw) - pos} bytes left")
        return np.frombuffer(raw, dtype=dtype, count=count, offset=pos).reshape(shape), pos + size
    if "data" not in entry:
        raise errors.InvalidArgument(f"input '{name}': no data and no binary_data_size")
    flat = np.asarray(entry["data"], dtype=dtype).reshape(-1)
    if flat.size != count:
        raise errors.InvalidArgument(f"input '{name}': shape {shape} needs {count} values, got {flat.size}")
    return flat.reshape(shape), pos


def fastapi_app(models, title="PyFlameRT"):
    """A FastAPI app serving `models` ({name: path or InferenceSession}) with KServe v2 routes."""
    fastapi = _import_fastapi()
    from fastapi.responses import JSONResponse, Response
    from .session import InferenceSession

    sessions = {}
    for name, source in dict(models).items():
        sessions[str(name)] = source if isinstance(source, InferenceSession) else InferenceSession(source)
    if not sessions:
        raise errors.InvalidArgument("fastapi_app: no models given")
    app = fastapi.FastAPI(title=title)

    def error(status, message):
        return JSONResponse({"error": message}, status_code=status)

    def find(model, version):
        if model not in sessions:
            return None, error(404, f"model '{model}' is not served here (models: {sorted(sessions)})")
        if version not in (None, "", "1"):
            return None, error(404, f"model '{model}' has version 1 only, got version '{version}'")
        return sessions[model], None

    def metadata(model, session):
        tensors = lambda args: [{"name": a.name, "datatype": _ONNX_TO_KSERVE.get(a.type, a.type),  # noqa: E731
                                 "shape": _shape(a.shape)} for a in args]
        return {"name": model, "versions": ["1"], "platform": "pyflame_rt_onnx",
                "inputs": tensors(session.get_inputs()), "outputs": tensors(session.get_outputs())}

    @app.get("/v2/health/live")
    def live():
        return Response(status_code=200)

    @app.get("/v2/health/ready")
    def ready():
        return Response(status_code=200)

    @app.get("/v2")
    def server_metadata():
        from . import __version__
        return {"name": "pyflame_rt", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.post("/v2/repository/index")
    def index():
        return [{"name": m, "version": "1", "state": "READY", "reason": ""} for m in sorted(sessions)]

    @app.get("/v2/models/{model}")
    @app.get("/v2/models/{model}/versions/{version}")
    def model_metadata(model: str, version: str = ""):
        session, err = find(model, version)
        return err if err is not None else metadata(model, session)

    @app.get("/v2/models/{model}/ready")
    @app.get("/v2/models/{model}/versions/{version}/ready")
    def model_ready(model: str, version: str = ""):
        _, err = find(model, version)
        return err if err is not None else Response(status_code=200)

    # A plain function: FastAPI runs it on a worker thread, so session.run() never blocks the loop.
    def infer(model: str, version: str, body: bytes, header_length):
        session, err = find(model, version)
        if err is not None:
            return err
        try:
            json_len = int(header_length) if header_length is not None else len(body)
            if not 0 <= json_len <= len(body):
                raise errors.InvalidArgument(f"Inference-Header-Content-Length {json_len} is outside the body "
                                             f"({len(body)} bytes)")
            try:
                request = json.loads(body[:json_len])
            except ValueError as exc:
                raise errors.InvalidArgument(f"the request is not valid JSON: {exc}") from None
            if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
                raise errors.InvalidArgument("the request needs an \"inputs\" list")
            raw, pos, feed = body[json_len:], 0, {}
            for entry in request["inputs"]:
                feed[entry.get("name")], pos = _decode_input(entry, raw, pos)
            wanted = [o["name"] for o in request.get("outputs", [])]
            names = wanted or [o.name for o in session.get_outputs()]
            results = session.run(names, feed)
        except errors.NotFound as exc:
            return error(400, str(exc))
        except errors.PyFlameRTError as exc:
            return error(400 if isinstance(exc, (errors.InvalidArgument, ValueError)) else 500, str(exc))
        binary_all = bool((request.get("parameters") or {}).get("binary_data_output"))
        binary_of = {o["name"]: bool((o.get("parameters") or {}).get("binary_data"))
                     for o in request.get("outputs", [])}
        outputs, blobs = [], []
        for name, value in zip(names, results):
            value = np.asarray(value)
            entry = {"name": name, "datatype": _NUMPY_TO_KSERVE.get(value.dtype, "BYTES"), "shape": list(value.shape)}
            if binary_of.get(name, binary_all):
                blob = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = value.reshape(-1).tolist()
            outputs.append(entry)
        answer = {"model_name": model, "model_version": "1", "outputs": outputs}
        if "id" in request:
            answer["id"] = request["id"]
        head = json.dumps(answer).encode()
        if not blobs:
            return Response(head, media_type="application/json")
        return Response(head + b"".join(blobs), media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(len(head))})

    from fastapi import Request

    @app.post("/v2/models/{model}/infer")
    @app.post("/v2/models/{model}/versions/{version}/infer")
    async def infer_route(model: str, request: Request, version: str = ""):
        body = await request.body()
        from starlette.concurrency import run_in_threadpool
        return await run_in_threadpool(infer, model, version, body,
                                       request.headers.get("inference-header-content-length"))

    return app
