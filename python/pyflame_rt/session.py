"""InferenceSession: ONNX Runtime's session API over the native core.

    import pyflame_rt as rt
    sess = rt.InferenceSession("model.onnx", providers=["CerebrasExecutionProvider"])
    outputs = sess.run(None, {"input": x})
"""

import os
import warnings

from . import _pyflame_rt, log
from .errors import InvalidArgument
from .batching import Batcher, as_float, as_int
from .iobinding import IOBinding, OrtValue
from .options import SessionOptions
from .provider_args import normalize_provider_args
from .streaming import Stream

CPU_PROVIDER = "CPUExecutionProvider"
CEREBRAS_PROVIDER = "CerebrasExecutionProvider"


_MAX_CACHED_BATCHERS = 4  # run_batch's batchers kept per session (one per setting)


def get_available_providers():
    """Providers this build can create, in the registry's order (devices/device_registry.h)."""
    return list(_pyflame_rt.available_providers())


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
    """What the model says about itself (ONNX Runtime's ModelMetadata)."""

    def __init__(self, producer_name="", graph_name="", domain="", description="", graph_description="",
                 version=0, custom_metadata_map=None, producer_version=""):
        self.producer_name = producer_name
        self.producer_version = producer_version
        self.graph_name = graph_name
        self.domain = domain
        self.description = description
        self.graph_description = graph_description
        self.version = version
        self.custom_metadata_map = dict(custom_metadata_map or {})

    def __repr__(self):
        return (f"ModelMetadata(producer_name={self.producer_name!r}, graph_name={self.graph_name!r}, "
                f"domain={self.domain!r}, version={self.version})")


class RunOptions(_pyflame_rt.RunOptions):
    """Per-run settings (ONNX Runtime's RunOptions): terminate (cancels runs using these
    options between nodes: they raise Fail), timeout_ms (a deadline from the start of each run,
    checked between nodes and Loop/Scan iterations: DeadlineExceeded; 0 = none), logid, log_severity_level, log_verbosity_level,
    add_run_config_entry / get_run_config_entry."""

    def __init__(self):
        super().__init__()
        # Accepted for ONNX Runtime code: there is no training mode or device to synchronise.
        self.training_mode = False
        self.synchronize_execution_providers = True
        self._only_execute_path_to_fetches = False

    @property
    def only_execute_path_to_fetches(self):
        return self._only_execute_path_to_fetches

    @only_execute_path_to_fetches.setter
    def only_execute_path_to_fetches(self, value):
        if value:
            log.warn("RunOptions.only_execute_path_to_fetches is ignored: every node of the model runs")
        self._only_execute_path_to_fetches = bool(value)


def _output_names(output_names):
    if output_names is not None and isinstance(output_names, str):
        output_names = [output_names]
    return list(output_names) if output_names else None


def _run_options(run_options):
    if run_options is None or isinstance(run_options, _pyflame_rt.RunOptions):
        return run_options
    raise InvalidArgument(f"run_options: expected RunOptions, got {type(run_options).__name__}")


def _normalise_providers(providers, provider_options=None):
    """(names, {name: {key: str}}) from ONNX Runtime's providers / provider_options arguments
    (provider_args.py); only providers given options appear in the dict."""
    names, options = normalize_provider_args(providers, provider_options)
    return names, {n: o for n, o in zip(names, options) if o}


def _prepare(path_or_bytes, sess_options, providers, kwargs, provider_options=None):
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
    return path_or_bytes, sess_options, _normalise_providers(providers, provider_options)


def q_measure(fp32_session, session, feeds):
    from .quantization import measure_error
    return measure_error(fp32_session, session, feeds)


def _native_options(options, provider_options):
    native = options.to_native()
    if provider_options:
        native["provider_options"] = provider_options
    return native


class SessionFuture:
    """A session being compiled by the compiler actor (InferenceSession.create_async)."""

    def __init__(self, cls, model, options, providers):
        self._args = (cls, model, options, providers)
        names, provider_options = providers
        self._native = _pyflame_rt.SessionFuture(model, _native_options(options, provider_options), names)
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

    _quantization = None  # (QuantConfig, fp32 model, report, fp32 session factory) when quantized

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None,
                 quantization=None, **kwargs):
        model, options, requested = _prepare(path_or_bytes, sess_options, providers, kwargs, provider_options)
        self._quantization = None
        if quantization is not None:
            model = self._quantize(model, options, requested, quantization)
        self._attach(model, options, requested, self._create_native(model, options, requested))

    def _quantize(self, model, options, requested, cfg):
        """Rewrites the model as cfg asks (pyflame_rt.quantization), calibrating on an fp32
        session with the same options; returns the rewritten model's bytes."""
        from . import quantization as q
        if not isinstance(cfg, q.QuantConfig):
            raise InvalidArgument(f"quantization: expected pyflame_rt.quantization.QuantConfig, got {type(cfg).__name__}")
        names, provider_options = requested

        def fp32_session(data):
            return InferenceSession(data, options, names, [provider_options.get(n, {}) for n in names])

        qmodel, report = q.quantize(model, cfg, fp32_session)
        data = qmodel.SerializeToString()
        self._quantization = (cfg, model, report, fp32_session)
        return data

    def quantization_report(self):
        """What was quantized (nodes, weight and activation scales) and the error per output
        against the fp32 model, measured on the calibration feeds (at most
        QuantConfig.max_report_feeds of them). None for a session without quantization."""
        if self._quantization is None:
            return None
        cfg, model, report, fp32_session = self._quantization
        if "outputs" not in report:
            feeds = (cfg.calibration_data or [])[:cfg.max_report_feeds]
            report["outputs"] = q_measure(fp32_session(model), self, feeds) if feeds else {}
        report["weights_in_memory"] = self._weights_in_memory()
        return report

    def _weights_in_memory(self):
        """What the compiled partitions hold as weights (from the CPU device's report): the
        initializer bytes by dtype, and how half-precision weights compute on this CPU (bf16
        kernels, or f32 packed weights: then the weights in memory are not halved, said in
        "notes"). Read fresh: a kernel that declines bf16 at its first run is counted then."""
        out = {"initializer_bytes": 0, "initializer_bytes_by_dtype": {}, "half_weight_nodes": {},
               "half_compute": {}, "packed_weights_halved": None, "bf16_kernels_declined": 0, "notes": []}
        for part in self.device_report()["partitions"]:
            w = part.get("weights")
            if not w:
                continue
            out["initializer_bytes"] += w["initializer_bytes"]
            for k, v in w["initializer_bytes_by_dtype"].items():
                out["initializer_bytes_by_dtype"][k] = out["initializer_bytes_by_dtype"].get(k, 0) + v
            for k, v in w["half_weight_nodes"].items():
                out["half_weight_nodes"][k] = out["half_weight_nodes"].get(k, 0) + v
            out["half_compute"].update(w["half_compute"])
            out["bf16_kernels_declined"] = max(out["bf16_kernels_declined"], w["bf16_kernels_declined"])
            if w["packed_weights_halved"] is not None:
                prev = out["packed_weights_halved"]
                out["packed_weights_halved"] = w["packed_weights_halved"] if prev is None else prev and w["packed_weights_halved"]
            if w["note"] not in out["notes"]:
                out["notes"].append(w["note"])
        return out

    @staticmethod
    def _create_native(model, options, requested):
        names, provider_options = requested
        return _pyflame_rt.Session(model, _native_options(options, provider_options), names)

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
            kwargs["quantization"] = quantization
        if compile_options is not None:
            import copy
            from .compile_options import CompileOptions
            if not isinstance(compile_options, CompileOptions):
                raise InvalidArgument(f"compile_options: expected CompileOptions, got {type(compile_options).__name__}")
            # A copy: the caller's SessionOptions stay as they were.
            base = sess_options if isinstance(sess_options, SessionOptions) else SessionOptions(**(sess_options or {}))
            sess_options = SessionOptions()
            object.__setattr__(sess_options, "_values", copy.deepcopy(base._values))
            compile_options.apply(sess_options)
        if optimization_level is not None:
            kwargs["optimization_level"] = optimization_level
        return cls(path_or_bytes, sess_options, providers, **kwargs)

    @classmethod
    def from_pytorch(cls, path_or_module, input_shapes=None, sess_options=None, providers=None, input_dtypes=None,
                     output_names=None, dynamic_batch=False, opset_version=13, **kwargs):
        """A session of a PyTorch model: an nn.Module or a torch.save() checkpoint of one, exported
        to ONNX in memory on inputs of input_shapes ({name: shape}, in argument order). Needs
        Debian's python3-torch (see pyflame_rt.torch_import)."""
        from . import torch_import
        module = torch_import.load_module(path_or_module)
        model = torch_import.export_onnx_bytes(module, input_shapes, input_dtypes, output_names, dynamic_batch,
                                               opset_version)
        return cls(model, sess_options, providers, **kwargs)

    @classmethod
    def from_torchscript(cls, path, input_shapes=None, sess_options=None, providers=None, input_dtypes=None,
                         output_names=None, dynamic_batch=False, opset_version=13, **kwargs):
        """A session of a TorchScript archive (torch.jit.save), exported like from_pytorch."""
        from . import torch_import
        module = torch_import.torchscript_module(path)
        model = torch_import.export_onnx_bytes(module, input_shapes, input_dtypes, output_names, dynamic_batch,
                                               opset_version)
        return cls(model, sess_options, providers, **kwargs)

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
        """Initializers a feed may replace (listed as inputs too by models of IR version < 4)."""
        return [NodeArg(*i) for i in self._native.overridable_initializers()]

    def get_providers(self):
        """Providers in effect, highest priority first (CPU always last)."""
        return self._native.providers()

    def get_provider_options(self):
        """{provider: its options} for the providers in effect (ONNX Runtime's shape)."""
        kept = self._requested_providers[1]
        return {p: dict(kept.get(p, {})) for p in self.get_providers()}

    def get_limit_counters(self):
        """How often each limit stopped one of this session's runs: {"runs_deadline_exceeded",
        "runs_memory_exceeded", "runs_terminated", ...}; pyflame_rt.limit_counters() sums the
        process (and counts models refused by max_model_size_mb)."""
        return dict(self._native.limit_counters())

    def get_fallback_nodes(self):
        """Nodes not on the first provider asked for (with the reason), and nodes a device runs
        on its slower reference kernels."""
        return list(self._native.fallback_nodes())

    def get_node_placement(self):
        """[{"node", "op_type", "device", "kernel"}] for every node, in run order: which device
        runs it and whether on its own ("native") or the reference kernel."""
        return [dict(zip(("node", "op_type", "device", "kernel"), k)) for k in self._native.node_kernels()]

    def get_devices_used(self):
        """Devices that run at least one node, in run order ("wse3", "cpu")."""
        return list(self._native.devices_used())

    def device_report(self):
        """The devices' own reports: for the wafer, placement on the fabric, SRAM per PE and
        estimated cycles; see docs/wse.md. {"devices": [...], "partitions": [...], ...}."""
        import json
        raw = json.loads(self._native.device_report_json())
        report = {"devices": self.get_devices_used(), "partitions": []}
        for part in raw["partitions"]:
            dev = part.get("report")
            if not dev or "partitions" not in dev:
                # A device report about this partition alone (the CPU's "weights") stays with it.
                entry = {"name": part["name"], "device": part["device"], "nodes": part["nodes"]}
                entry.update(dev or {})
                report["partitions"].append(entry)
                continue
            for key, value in dev.items():
                if key == "partitions":
                    report["partitions"].extend(value)
                elif key not in report:
                    report[key] = value
        report.setdefault("device", report["devices"][0] if report["devices"] else "cpu")
        return report

    def get_session_options(self):
        return self._options

    def get_modelmeta(self):
        return ModelMetadata(**self._native.metadata())

    def get_profiling_start_time_ns(self):
        """When profiling started (the session's creation), in nanoseconds since the epoch."""
        return self._native.profiling_start_time_ns()

    def set_providers(self, providers=None, provider_options=None):
        """Places the model again on `providers` (ONNX Runtime's set_providers)."""
        requested = _normalise_providers(providers, provider_options)
        native = self._create_native(self._model, self._options, requested)
        self._attach(self._model, self._options, requested, native)

    def disable_fallback(self):
        pass

    def enable_fallback(self):
        pass

    def run(self, output_names, input_feed, run_options=None):
        """Runs the model; output_names None or [] returns every output in model order.
        Sequence outputs come back as lists of arrays."""
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed: expected a dict of input name -> numpy array, got {type(input_feed).__name__}")
        return self._native.run(_output_names(output_names), input_feed, _run_options(run_options))

    def run_with_ort_values(self, output_names, input_dict_ort_values, run_options=None):
        """Like run(), with OrtValues in and out (no conversion to numpy on the way out)."""
        if not isinstance(input_dict_ort_values, dict):
            raise InvalidArgument("input_dict_ort_values: expected a dict of input name -> OrtValue, got "
                                  f"{type(input_dict_ort_values).__name__}")
        return self._native.run_with_ort_values(_output_names(output_names), input_dict_ort_values,
                                                _run_options(run_options))

    def io_binding(self):
        """An IOBinding for run_with_iobinding (see pyflame_rt.iobinding)."""
        return IOBinding(self)

    def run_with_iobinding(self, iobinding, run_options=None):
        """Runs with the bound inputs; outputs bound to a buffer are written into it."""
        iobinding._run(self._native, _run_options(run_options))

    def run_async(self, output_names, input_feed, callback, user_data, run_options=None):
        """Starts a run on the engine's actor system and returns at once; when it ends,
        callback(outputs, user_data, err) is called on that system's thread: outputs is the
        list run() would return (None on failure), err "" or the error's message. The feed's
        arrays must stay unchanged until then."""
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed: expected a dict of input name -> numpy array, got {type(input_feed).__name__}")
        if not callable(callback):
            raise InvalidArgument(f"callback: expected a callable, got {type(callback).__name__}")
        self._native.run_async(_output_names(output_names), input_feed, callback, user_data,
                               _run_options(run_options))

    # Batching and streaming (the actor engine) ---------------------------------------------

    def run_batch(self, output_names, input_feeds, max_batch_size=8, batch_timeout_ms=2.0, priority=0):
        """Runs many feeds through the batching actor (coalesced up to max_batch_size per model
        run) and returns one output list per feed, in order. If any feed fails, the first
        failure is raised naming its index, after every feed was answered."""
        key = (as_int("max_batch_size", max_batch_size), as_float("batch_timeout_ms", batch_timeout_ms))
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
                      input_name=None, time_axis=None, time_aligned_outputs=None, name=None, idle_timeout_ms=0):
        """A Stream over this model (see pyflame_rt.streaming): chunk_size samples per window
        along the time axis (0 = each chunk as it comes), overlap samples shared by consecutive
        windows, hidden state fed back when stateful (pairs detected from names and shapes such
        as h0/hn, or given as state_map={input: output}; first value zeros or state={input: array}).
        idle_timeout_ms > 0: a stream given no chunk for that long is freed (its state goes; later
        calls raise DeadlineExceeded; counted in pyflame_rt.limit_counters())."""
        return Stream(self, chunk_size=as_int("chunk_size", chunk_size), overlap=as_int("overlap", overlap),
                      stateful=bool(stateful), state=state, state_map=state_map, input_name=input_name,
                      time_axis=time_axis, time_aligned_outputs=time_aligned_outputs, name=name,
                      idle_timeout_ms=as_int("idle_timeout_ms", idle_timeout_ms))

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

    # Introspection ------------------------------------------------------------------------
    def graph_text(self):
        """The optimised graph as deterministic text."""
        return self._native.graph_text()
