"""Pipelines: multi-model chains with Python glue stages.

    p = rt.Pipeline()
    p.add_stage("detect", session=detector)                  # first stage: fed by push()
    p.add_stage("crop", fn=crop_faces)                       # after the previous stage
    p.add_stage("embed", session=embedder, after=["crop"])
    p.add_stage("liveness", session=liveness, after=["crop"], capacity=4, policy="drop_oldest")
    p.add_stage("join", after=["embed", "liveness"])         # no fn: merge the branches
    p.add_stage("score", remote="10.0.0.5:4242")             # served by another process
    p.start()
    p.push({"image": frame}, stream=camera_id)
    result = p.pull(timeout_ms=1000)                         # in push order per stream

A stage is a model (its inputs are taken from the frame by name, its outputs added to it) or
a callable taking and returning a dict of numpy arrays. Each stage runs on its own thread and
its input is a bounded channel with a policy: "block" (back-pressure), "drop_oldest" or
"drop_newest". A dropped frame still comes out of pull() marked dropped, so every pushed frame
is accounted for; a stage that raises fails that frame only.
"""
from . import _pyflame_rt
from .batching import as_int
from .errors import InvalidArgument, PyFlameRTError, exception_for_code
from .remote import RemoteStage

POLICIES = ("block", "drop_oldest", "drop_newest")


class PipelineResult:
    """One frame out of the pipeline: outputs (dict) or error, or dropped_at (stage name)."""

    def __init__(self, stream, seq, outputs, error, dropped_at, latency_us):
        self.stream = stream
        self.seq = seq
        self.outputs = outputs
        self.error = exception_for_code(error[0])(error[1]) if error else None
        self.dropped_at = dropped_at or None
        self.latency_us = latency_us

    @property
    def ok(self):
        return self.error is None and self.dropped_at is None

    def raise_for_error(self):
        if self.error is not None:
            raise self.error
        if self.dropped_at is not None:
            raise PyFlameRTError(f"frame {self.seq} of stream {self.stream} was dropped at stage '{self.dropped_at}'")
        return self.outputs

    def __repr__(self):
        state = "ok" if self.ok else (f"dropped at {self.dropped_at!r}" if self.dropped_at else repr(self.error))
        return f"PipelineResult(stream={self.stream}, seq={self.seq}, {state}, {self.latency_us:.0f} us)"


class Pipeline:
    def __init__(self, output_capacity=1024):
        self._stages = []
        self._output_capacity = as_int("output_capacity", output_capacity)
        self._native = None

    def add_stage(self, name, session=None, fn=None, after=None, capacity=64, policy="block", remote=None):
        """after=None: after the previously added stage (the first stage is fed by push()).
        remote: a RemoteStage, or 'host:port' of a stage served by rt.serve / `pyflame-rt serve`."""
        if self._native is not None:
            raise InvalidArgument(f"stage '{name}': the pipeline is already started")
        if sum(x is not None for x in (session, fn, remote)) > 1:
            raise InvalidArgument(f"stage '{name}': give one of session, fn or remote")
        if remote is not None and not isinstance(remote, RemoteStage):
            remote = RemoteStage(remote)
        if fn is not None and not callable(fn):
            raise InvalidArgument(f"stage '{name}': fn must be callable, got {type(fn).__name__}")
        if policy not in POLICIES:
            raise InvalidArgument(f"stage '{name}': policy: expected one of {POLICIES}, got {policy!r}")
        if after is None:
            after = [self._stages[-1]["name"]] if self._stages else []
        elif isinstance(after, str):
            after = [after]
        native_session = session._native if session is not None else None
        self._stages.append({"name": name, "after": list(after), "session": native_session, "fn": fn,
                             "remote": remote._native if remote is not None else None,
                             "capacity": as_int(f"stage '{name}': capacity", capacity), "policy": policy})
        return self

    @classmethod
    def from_partitions(cls, model, partitions=2, sess_options=None, output_capacity=1024):
        """A model (path or bytes) optimised once, split into up to `partitions` parts of about
        equal estimated cost, each compiled and run by its own stage actor: frames overlap
        across the parts (pipeline parallelism). push() the model's inputs; pull() gives its
        outputs. `.partitions` describes the parts (name, nodes, cost_share, inputs, outputs)."""
        from .session import _prepare
        model, options, _ = _prepare(model, sess_options, None, {})
        if not isinstance(partitions, int) or partitions < 1:
            raise InvalidArgument(f"partitions: expected an int >= 1, got {partitions!r}")
        native, parts = _pyflame_rt.partitioned_pipeline(model, options.to_native(), partitions, int(output_capacity))
        p = cls(output_capacity)
        p._native = native
        p._stages = [{"name": d["name"]} for d in parts]
        p.partitions = parts
        return p

    def start(self):
        if self._native is None:
            self._native = _pyflame_rt.Pipeline(self._stages, self._output_capacity)
        return self

    def push(self, frame, stream=0, max_block_ms=60000):
        """Sends a frame (dict of numpy arrays); returns its sequence number within `stream`.
        A "block" first stage still full after max_block_ms drops the frame (pull() shows it
        dropped) and raises DeadlineExceeded."""
        return self.start()._native.push(frame, int(stream), float(max_block_ms))

    def pull(self, timeout_ms=1000):
        """The next PipelineResult; raises DeadlineExceeded after timeout_ms, Unavailable when
        the pipeline is closed and drained."""
        return PipelineResult(*self.start()._native.pull(float(timeout_ms)))

    def close(self):
        """No more pushes; accepted frames still come out of pull()."""
        if self._native is not None:
            self._native.close()

    def stop(self):
        if self._native is not None:
            self._native.stop()

    def metrics(self):
        """Per stage: processed, failed, dropped, queue_depth, max_queue_depth, p50_us, p99_us."""
        return self._native.metrics() if self._native is not None else []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
