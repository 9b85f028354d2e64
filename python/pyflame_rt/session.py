"""InferenceSession: ONNX Runtime's session API over the native core.

    import pyflame_rt as rt
    sess = rt.InferenceSession("model.onnx", providers=["CerebrasExecutionProvider"])
    outputs = sess.run(None, {"input": x})
"""

import os
import warnings

from . import _pyflame_rt
from .errors import InvalidArgument
from .batching import Batcher
from .options import SessionOptions
from .streaming import Stream

CPU_PROVIDER = "CPUExecutionProvider"
CEREBRAS_PROVIDER = "CerebrasExecutionProvider"


_MAX_CACHED_BATCHERS = 4  # run_batch's batchers kept per session (one per setting)


def get_available_providers():
    return [CEREBRAS_PROVIDER, CPU_PROVIDER]


def get_all_providers():
    return get_available_providers()


def get_device():
    return "CPU"


class NodeArg:
    """Name, shape and type of a model input or output (ONNX Runtime's NodeArg)."""

    def __init__(self, name, shape, type_):
        self.name = name
        self.shape = shape
        self.type = type_

    @property
    def dtype(self):
        """The seed API's spelling of the type (same string as .type)."""
        return self.type

    def __repr__(self):
        return f"NodeArg(name='{self.name}', type='{self.type}', shape={self.shape})"


class OpProfile:
    """One node of a profiled run."""

    def __init__(self, name, op_type, duration_us, percentage):
        self.name = name
        self.op_type = op_type
        self.duration_us = duration_us
        self.percentage = percentage

    def __repr__(self):
        return f"OpProfile({self.name!r}, {self.op_type}, {self.duration_us:.1f} us, {self.percentage:.1f}%)"


class Profile:
    """Result of InferenceSession.run_with_profiling: per-node times in execution order."""

    def __init__(self, outputs, nodes):
        self.outputs = outputs
        self.total_us = float(sum(n[2] for n in nodes))
        total = self.total_us or 1.0
        self.operations = [OpProfile(name, op, us, 100.0 * us / total) for name, op, us in nodes]

    def by_op_type(self):
        """{op type: total microseconds}, largest first."""
        totals = {}
        for op in self.operations:
            totals[op.op_type] = totals.get(op.op_type, 0.0) + op.duration_us
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


class ModelMetadata:
    def __init__(self, graph_name=""):
        self.producer_name = "pyflame_rt"
        self.graph_name = graph_name
        self.domain = ""
        self.description = ""
        self.graph_description = ""
        self.version = 0
        self.custom_metadata_map = {}


class RunOptions:
    """Accepted for ONNX Runtime compatibility (log settings, tag, terminate flag)."""

    def __init__(self):
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.terminate = False
        self.only_execute_path_to_fetches = False


def _normalise_providers(providers):
    if providers is None:
        return []
    names = []
    for p in providers:
        # ONNX Runtime also accepts (name, options) tuples.
        name = p[0] if isinstance(p, (tuple, list)) else p
        if not isinstance(name, str):
            raise InvalidArgument(f"providers: expected provider names (str), got {p!r}")
        names.append(name)
    return names


def _prepare(path_or_bytes, sess_options, providers, kwargs):
    """Checks and normalises the constructor's arguments: (model, SessionOptions, providers)."""
    if sess_options is None:
        sess_options = SessionOptions()
    elif isinstance(sess_options, dict):
        sess_options = SessionOptions(**sess_options)
    elif not isinstance(sess_options, SessionOptions):
        raise InvalidArgument(
            f"sess_options: expected SessionOptions, got {type(sess_options).__name__}")
    # Seed-API keyword arguments (optimization_level=..., num_threads=...) override options.
    for key, value in kwargs.items():
        setattr(sess_options, key, value)
    if isinstance(path_or_bytes, os.PathLike):
        path_or_bytes = os.fspath(path_or_bytes)
    if not isinstance(path_or_bytes, (str, bytes)):
        raise InvalidArgument(
            f"path_or_bytes: expected a path (str) or model bytes, got {type(path_or_bytes).__name__}")
    return path_or_bytes, sess_options, _normalise_providers(providers)


class SessionFuture:
    """A session being compiled by the compiler actor (InferenceSession.create_async)."""

    def __init__(self, cls, model, options, providers):
        self._args = (cls, model, options, providers)
        self._native = _pyflame_rt.SessionFuture(model, options.to_native(), providers)
        self._session = None

    def done(self):
        return self._session is not None or self._native.done()

    def result(self, timeout=600.0):
        """The InferenceSession; raises the compile's error, or DeadlineExceeded after timeout s."""
        if self._session is None:
            native = self._native.result(float(timeout) * 1e3)
            cls, model, options, providers = self._args
            session = cls.__new__(cls)
            session._attach(model, options, providers, native)
            self._session = session
        return self._session


class InferenceSession:
    """Loads a model (ONNX or .pfm, from a path or bytes) and runs it."""

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None,
                 **kwargs):
        model, options, requested = _prepare(path_or_bytes, sess_options, providers, kwargs)
        self._attach(model, options, requested,
                     _pyflame_rt.Session(model, options.to_native(), requested))

    @classmethod
    def create_async(cls, path_or_bytes, sess_options=None, providers=None, **kwargs):
        """Compiles the model on the compiler actor's thread and returns at once a SessionFuture:
        .done(), .result(timeout=600) -> InferenceSession. Running sessions are not slowed by
        the compile's bookkeeping and never wait for it."""
        model, options, requested = _prepare(path_or_bytes, sess_options, providers, kwargs)
        return SessionFuture(cls, model, options, requested)

    def _attach(self, model, options, requested_providers, native):
        self._model = model
        self._options = options
        self._requested_providers = requested_providers
        self._native = native
        for message in self._native.warnings():
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        self._batchers = {}
        self._inputs = [NodeArg(*i) for i in self._native.inputs()]
        self._outputs = [NodeArg(*o) for o in self._native.outputs()]

    # Seed API constructors -------------------------------------------------------------
    @classmethod
    def from_onnx(cls, path_or_bytes, sess_options=None, providers=None, optimization_level=None,
                  quantization=None, compile_options=None, **kwargs):
        if quantization is not None:
            from .errors import NotImplemented as _NotImplemented
            raise _NotImplemented("quantization is not supported yet (arrives with reduced precision)")
        if optimization_level is not None:
            kwargs["optimization_level"] = optimization_level
        return cls(path_or_bytes, sess_options, providers, **kwargs)

    @property
    def compiled_from_cache(self):
        """True when the optimised graph came from SessionOptions.compile_cache_dir."""
        return self._native.compiled_from_cache()

    # ONNX Runtime API --------------------------------------------------------------------
    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_overridable_initializers(self):
        return []

    def get_providers(self):
        return self._native.providers()

    def get_provider_options(self):
        return {p: {} for p in self.get_providers()}

    def get_session_options(self):
        return self._options

    def get_modelmeta(self):
        return ModelMetadata()

    def set_providers(self, providers=None, provider_options=None):
        _normalise_providers(providers)

    def disable_fallback(self):
        pass

    def enable_fallback(self):
        pass

    def run(self, output_names, input_feed, run_options=None):
        """Runs the model; output_names None or [] returns every output in model order."""
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed: expected a dict of input name -> numpy array, got {type(input_feed).__name__}")
        if output_names is not None and isinstance(output_names, str):
            output_names = [output_names]
        return self._native.run(list(output_names) if output_names else None, input_feed)

    # Batching and streaming (the actor engine) ---------------------------------------------

    def run_batch(self, output_names, input_feeds, max_batch_size=8, batch_timeout_ms=2.0, priority=0):
        """Runs many feeds through the batching actor (coalesced up to max_batch_size per model
        run) and returns one output list per feed, in order. If any feed fails, the first
        failure is raised naming its index, after every feed was answered."""
        key = (int(max_batch_size), float(batch_timeout_ms))
        batcher = self._batchers.pop(key, None)
        if batcher is None:  # one batcher per setting, reused by later calls
            batcher = self.create_batcher(max_batch_size, batch_timeout_ms)
        self._batchers[key] = batcher  # most recently used last
        # A new setting per call must not pile up batchers and their threads: keep the few most
        # recent; an evicted one stops once the calls still using it return (last reference).
        while len(self._batchers) > _MAX_CACHED_BATCHERS:
            self._batchers.pop(next(iter(self._batchers)))
        return batcher.run_many(output_names, input_feeds, priority)

    def create_batcher(self, max_batch_size=8, batch_timeout_ms=2.0, preferred_batch_sizes=(),
                       max_queue_size=1024, request_timeout_ms=60000, name=None, device_actors=1):
        """A Batcher for concurrent callers of this model (see pyflame_rt.batching)."""
        if name is None:
            name = self._model if isinstance(self._model, str) else "model"
        return Batcher(self, name, max_batch_size, batch_timeout_ms, preferred_batch_sizes, max_queue_size,
                       request_timeout_ms, device_actors)

    def create_stream(self, chunk_size=0, overlap=0, stateful=True, state=None, state_map=None,
                      input_name=None, time_axis=None, time_aligned_outputs=None, name=None):
        """A Stream over this model (see pyflame_rt.streaming): chunk_size samples per window
        along the time axis (0 = each chunk as it comes), overlap samples shared by consecutive
        windows, hidden state fed back when stateful (pairs detected from names and shapes such
        as h0/hn, or given as state_map={input: output}; first value zeros or state={input: array})."""
        return Stream(self, chunk_size=int(chunk_size), overlap=int(overlap), stateful=bool(stateful), state=state,
                      state_map=state_map, input_name=input_name, time_axis=time_axis,
                      time_aligned_outputs=time_aligned_outputs, name=name)

    def run_with_profiling(self, input_feed, output_names=None):
        """Runs once timing every node; returns a Profile (.operations, .outputs, .total_us)."""
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed: expected a dict of input name -> numpy array, got {type(input_feed).__name__}")
        outputs, nodes = self._native.run_with_profiling(list(output_names) if output_names else None, input_feed)
        return Profile(outputs, nodes)

    def end_profiling(self):
        """Writes the per-node timings of every run since the session started (or since the
        last call) as a Chrome trace JSON and returns its path; "" without enable_profiling."""
        return self._native.end_profiling()

    def get_fallback_nodes(self):
        """Nodes the device runs on its slower reference kernels, as "Op 'name'"."""
        return self._native.fallback_nodes()

    # Introspection ------------------------------------------------------------------------
    def graph_text(self):
        """The optimised graph as deterministic text."""
        return self._native.graph_text()
