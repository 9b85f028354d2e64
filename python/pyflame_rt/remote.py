"""Scale-out: stages and models served by another process or host (CAF remote actors over TCP).

    # process A
    server = rt.serve(session, name="embed", host="0.0.0.0", port=4242)   # or rt.serve(fn, name=...)
    # process B
    embed = rt.RemoteStage("10.0.0.5", 4242)
    print(embed.run(None, {"image": x}))                  # a served model, like session.run
    p.add_stage("embed", remote=embed, after="crop")      # or remote="10.0.0.5:4242"

A served model receives only the frame entries it reads and sends back only its outputs. A
server that goes away fails the frames waiting on it with Unavailable, naming the stage and
its address; the next call connects again, so a restarted server is picked up.
`pyflame-rt serve MODEL --port N` serves a model from the command line.
"""
from . import _pyflame_rt
from .errors import InvalidArgument
from .runtime import check_grace_ms


class StageServer:
    """A served model or function; stop() (or leaving a with-block) closes the port.

    stop() is bounded, like `pyflame-rt serve --shutdown-grace-ms`: frames still queued are
    refused and the run of the frame in progress is stopped at its next check (its caller gets
    rt.Unavailable "the run was stopped: stage 'x' is shutting down"; the process's other runs
    go on), which gets `grace_ms` to end before the port and the connections close. It returns
    within grace_ms plus about 3 s whatever the clients or the frame do."""

    def __init__(self, native, shutdown_grace_ms=1000):
        self._native = native
        self._grace_ms = shutdown_grace_ms

    @property
    def port(self):
        return self._native.port()

    @property
    def name(self):
        return self._native.name()

    def stats(self):
        return {"frames_served": self._native.frames_served(), "frames_failed": self._native.frames_failed()}

    def stop(self, grace_ms=None):
        """Stops serving (see the class). Returns True when everything ended, False when a frame
        was still running past the grace (a kernel that does not check, or a Python stage that
        does not return): it is abandoned to finish on its own, and rt.shutdown() (at exit)
        waits for it. grace_ms defaults to serve()'s shutdown_grace_ms. Idempotent."""
        grace = self._grace_ms if grace_ms is None else check_grace_ms("StageServer.stop: grace_ms", grace_ms)
        return self._native.stop_within(grace)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"StageServer({self.name!r}, port={self.port})"


def serve(target, name=None, host="127.0.0.1", port=0, shutdown_grace_ms=1000):
    """Serves an InferenceSession (a model stage) or a callable taking and returning a dict of
    numpy arrays. port=0 picks a free port (see .port); host="0.0.0.0" listens on every interface.
    shutdown_grace_ms: how long stop() lets a stopped frame end (StageServer)."""
    grace = check_grace_ms("serve: shutdown_grace_ms", shutdown_grace_ms)
    from .session import InferenceSession
    if isinstance(target, InferenceSession):
        native_target = target._native
        name = name or "model"
    elif callable(target):
        native_target = target
        name = name or getattr(target, "__name__", "stage")
    else:
        raise InvalidArgument(f"serve: expected an InferenceSession or a callable, got {type(target).__name__}")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgument(f"serve: port: expected an int in [0, 65535], got {port!r}")
    return StageServer(_pyflame_rt.StageServer(str(name), native_target, str(host), port), grace)


class RemoteStage:
    """A client of a served stage; connects at once (Unavailable if nothing answers)."""

    def __init__(self, host, port=None, timeout_ms=30000):
        if port is None:
            host, port = parse_address(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgument(f"RemoteStage: port: expected an int in [0, 65535], got {port!r}")
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) or not timeout_ms > 0:
            raise InvalidArgument(f"RemoteStage: timeout_ms: expected a number > 0, got {timeout_ms!r}")
        self._native = _pyflame_rt.RemoteStage(str(host), port, float(timeout_ms))

    @property
    def name(self):
        return self._native.name()

    @property
    def address(self):
        return self._native.address()

    @property
    def inputs(self):
        """Input names of a served model (empty for a served function)."""
        return self._native.inputs()

    @property
    def outputs(self):
        return self._native.outputs()

    def call(self, frame):
        """The frame with the remote stage's changes applied."""
        return self._native.call(frame)

    def run(self, output_names, input_feed):
        """A served model, called like InferenceSession.run: a list of outputs in order."""
        if not self.outputs:
            raise InvalidArgument(f"remote stage '{self.name}' at {self.address} serves a function, not a model: use call()")
        out = self.call(input_feed)
        names = self.outputs if output_names is None else list(output_names)
        missing = [n for n in names if n not in self.outputs]
        if missing:
            raise InvalidArgument(f"remote model '{self.name}': unknown output {missing[0]!r} (outputs: {self.outputs})")
        return [out[n] for n in names]

    def __repr__(self):
        return f"RemoteStage({self.name!r} at {self.address})"


def parse_address(address):
    """'host:port' or (host, port) -> (host, port)."""
    if isinstance(address, (tuple, list)) and len(address) == 2 and isinstance(address[1], int) \
            and not isinstance(address[1], bool):
        return str(address[0]), address[1]
    if isinstance(address, str) and ":" in address:
        host, _, port = address.rpartition(":")
        if port.isdigit() and 0 < int(port) < 65536:
            return host, int(port)
    raise InvalidArgument(f"remote address: expected 'host:port' or (host, port), got {address!r}")
