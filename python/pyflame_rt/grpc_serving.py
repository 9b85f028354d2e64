"""GRPCServer: KServe v2 over gRPC (and optionally ZeroMQ) from the C++ server of net/.

    from pyflame_rt.serving import GRPCServer
    server = GRPCServer(model_path="model.onnx", port=8001, max_concurrent_rpcs=64)
    server.start_background()              # returns once listening; server.port, server.url
    ...
    server.stop()

The same server process as ModelServer (one model repository, dynamic batching per model);
HTTP is off unless http_port is given. ModelStreamInfer with a `sequence_id` parameter runs
stateful sequences (sequence_idle_ms frees idle ones). zmq_pull/zmq_pub add the ZeroMQ
listener (docs/serving_grpc_zmq.md).
"""
from .serving import MultiModelServer


class GRPCServer(MultiModelServer):
    """Serves models=..., or one model_path/session (under `name`), over gRPC on `port`."""

    def __init__(self, model_path=None, *, session=None, models=None, name=None, port=8001, max_concurrent_rpcs=0,
                 http_port=-1, zmq_pull="", zmq_pub="", zmq_sub="", sequence_idle_ms=1000, **options):
        import os
        from .errors import InvalidArgument
        given = [x is not None for x in (model_path, session, models)]
        if sum(given) != 1 and options.get("repository") is None:
            raise InvalidArgument("GRPCServer: give exactly one of model_path, session or models")
        if models is None and (model_path is not None or session is not None):
            if name is None:
                name = (os.path.splitext(os.path.basename(os.fspath(model_path)))[0]
                        if model_path is not None else "model")
            models = {name: model_path if model_path is not None else session}
        super().__init__(models, port=http_port, **options)
        self._options.update({"grpc_port": int(port), "grpc_max_concurrent_rpcs": int(max_concurrent_rpcs),
                              "zmq_pull": str(zmq_pull), "zmq_pub": str(zmq_pub), "zmq_sub": str(zmq_sub),
                              "sequence_idle_ms": int(sequence_idle_ms)})

    @property
    def port(self):
        """The bound gRPC port (port=0 picks a free one); None before start."""
        return self._native.grpc_port() if self._native is not None else None

    @property
    def http_port(self):
        return self._native.port() if self._native is not None else None

    @property
    def url(self):
        host = self._options["host"]
        return f"grpc://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"

    @property
    def addresses(self):
        """Every listener with its address ("grpc 0.0.0.0:8001", "zmq pull tcp://... pub tcp://...")."""
        return self._native.addresses() if self._native is not None else []
