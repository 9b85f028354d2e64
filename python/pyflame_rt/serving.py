"""Model serving over KServe v2 HTTP/REST (the C++ server of net/, in this process).

    from pyflame_rt.serving import ModelServer, MultiModelServer
    server = ModelServer(model_path="model.onnx", port=8000, max_batch_size=8)
    server.start()                         # blocks until stop() or Ctrl-C

    server = MultiModelServer(models={"cnn": "cnn.onnx", "gru": session}, port=0)
    server.start_background()              # returns once listening; server.port, server.url
    ...
    server.stop()

Requests never run Python: the HTTP threads parse, each model's batcher runs it (dynamic
batching: max_batch_size, batch_timeout_ms, preferred_batch_sizes, max_queue_size), and
answers go back from C++. Routes and options: docs/serving.md.
"""
import os
import threading

from .errors import InvalidArgument
from .runtime import check_grace_ms


class MultiModelServer:
    """Serves several models, each given as a path (.onnx/.pfm, or a Triton-layout directory)
    or an InferenceSession, under its name.

    Defaults favour throughput: device_actors=2 batches compute at once, each with
    num_threads=1 intra-op thread (raise num_threads for large models where one request's
    latency matters more). A session passed in keeps its own thread setting."""

    def __init__(self, models=None, *, host="0.0.0.0", port=8000, max_batch_size=8, batch_timeout_ms=0.0,
                 preferred_batch_sizes=None, max_queue_size=1024, request_timeout_ms=60000, device_actors=2,
                 num_threads=1, http_threads=1, max_body_bytes=64 << 20, repository=None, shutdown_grace_ms=1000):
        from .session import InferenceSession
        self._models = []
        for name, source in (models or {}).items():
            if isinstance(source, InferenceSession):
                self._models.append((str(name), None, source._native))
            elif isinstance(source, (str, os.PathLike)):
                self._models.append((str(name), os.fspath(source), None))
            else:
                raise InvalidArgument(f"model '{name}': expected a path or an InferenceSession, "
                                      f"got {type(source).__name__}")
        if not self._models and repository is None:
            raise InvalidArgument("nothing to serve: give models={name: path_or_session} or repository=DIR")
        self._options = {
            "host": host, "port": int(port), "max_batch_size": int(max_batch_size),
            "batch_timeout_ms": float(batch_timeout_ms), "max_queue_size": int(max_queue_size),
            "request_timeout_ms": int(request_timeout_ms), "device_actors": int(device_actors),
            "num_threads": int(num_threads), "http_threads": int(http_threads),
            "max_body_bytes": int(max_body_bytes),
            "shutdown_grace_ms": check_grace_ms("MultiModelServer: shutdown_grace_ms", shutdown_grace_ms),
        }
        if preferred_batch_sizes:
            self._options["preferred_batch_sizes"] = [int(s) for s in preferred_batch_sizes]
        if repository is not None:
            self._options["repository"] = os.fspath(repository)
        self._native = None
        self._stopped = threading.Event()

    def start_background(self):
        """Loads the models and starts listening; returns once requests are accepted."""
        if self._native is None:
            self._stopped.clear()
            # The servers are a second extension (gRPC, ZeroMQ, Beast), loaded by the first server.
            from . import _pyflame_rt_serving
            self._native = _pyflame_rt_serving.ModelServer(self._models, self._options)
        return self

    def start(self):
        """start_background(), then blocks until stop() (from another thread) or Ctrl-C."""
        self.start_background()
        try:
            while not self._stopped.wait(0.25):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self):
        """Stops the runs in progress (at their next check; their requests are answered 503
        "the run was stopped: the model server is shutting down", the process's other runs go
        on) and gives them shutdown_grace_ms (1 s) to end, stops listening, answers what is
        queued and releases the models. A run still going past the grace (a kernel that does
        not check) is abandoned to finish on its own. Idempotent."""
        native, self._native = self._native, None
        if native is not None:
            native.stop()
        self._stopped.set()

    @property
    def port(self):
        """The bound HTTP port (port=0 picks a free one); None before start."""
        return self._native.port() if self._native is not None else None

    @property
    def url(self):
        host = self._options["host"]
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"

    @property
    def models(self):
        return self._native.models() if self._native is not None else [m[0] for m in self._models]

    def metrics(self):
        """The Prometheus text of GET /metrics."""
        return self._native.metrics() if self._native is not None else ""

    def __enter__(self):
        return self.start_background()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"{type(self).__name__}(models={self.models}, port={self.port})"


class ModelServer(MultiModelServer):
    """Serves one model: model_path (or session=) under `name` (default: the file's stem)."""

    def __init__(self, model_path=None, *, session=None, name=None, **options):
        if (model_path is None) == (session is None):
            raise InvalidArgument("ModelServer: give exactly one of model_path or session")
        if name is None:
            name = os.path.splitext(os.path.basename(os.fspath(model_path)))[0] if model_path is not None else "model"
        super().__init__({name: model_path if model_path is not None else session}, **options)


# gRPC/ZeroMQ and the FastAPI app live in their own modules; they are part of this namespace,
# imported when first asked for (fastapi_serving imports numpy).
def __getattr__(name):
    if name == "GRPCServer":
        from .grpc_serving import GRPCServer
        return GRPCServer
    if name == "fastapi_app":
        from .fastapi_serving import fastapi_app
        return fastapi_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
