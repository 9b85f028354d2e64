"""SessionOptions and the enums users set on it.

Accepts both the seed API's field names (num_threads, optimization_level, execution_mode=
"sequential") and ONNX Runtime's (intra_op_num_threads, graph_optimization_level,
ExecutionMode.ORT_SEQUENTIAL), so code written for either runs unchanged.
"""

import enum
import os

from .errors import InvalidArgument


class OptLevel(enum.IntEnum):
    NONE = 0
    BASIC = 1
    EXTENDED = 2
    ALL = 3


class GraphOptimizationLevel(enum.IntEnum):
    """ONNX Runtime's names for the optimisation levels."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


def _opt_level_value(level):
    if isinstance(level, GraphOptimizationLevel):
        return {0: 0, 1: 1, 2: 2, 99: 3}[int(level)]
    if isinstance(level, str):
        try:
            return int(OptLevel[level.upper()])
        except KeyError:
            raise InvalidArgument(
                f"optimization_level: expected one of NONE, BASIC, EXTENDED, ALL, got '{level}'"
            ) from None
    value = int(level)
    if value == 99:
        return 3
    if value not in (0, 1, 2, 3):
        raise InvalidArgument(f"optimization_level: expected 0..3 (OptLevel), got {level!r}")
    return value


class SessionOptions:
    """Options of an InferenceSession; every field can be passed to the constructor."""

    _FIELDS = {
        "device": "cpu",
        "num_threads": 0,
        "enable_profiling": False,
        "profile_file_prefix": "pyflame_rt_profile",
        "memory_limit_mb": 0,
        "execution_mode": "sequential",
        "memory_pool": "arena",  # see actors/session_options.h
        "enable_memory_reuse": True,
        "optimization_level": OptLevel.ALL,
        "disabled_passes": (),
        "optimized_model_path": "",
        "compile_cache_dir": "",
    }
    # ONNX Runtime attribute names that map onto ours.
    _ALIASES = {
        "intra_op_num_threads": "num_threads",
        "graph_optimization_level": "optimization_level",
        "optimized_model_filepath": "optimized_model_path",
        "enable_mem_reuse": "enable_memory_reuse",
        "enable_mem_pattern": "enable_memory_reuse",
    }
    # ONNX Runtime attributes we accept and keep but that do not change behaviour here.
    _ACCEPTED = {
        "inter_op_num_threads": 0,
        "log_severity_level": 2,
        "log_verbosity_level": 0,
        "logid": "",
        "enable_cpu_mem_arena": True,
        "use_deterministic_compute": False,
    }

    def __init__(self, **kwargs):
        object.__setattr__(self, "_values", dict(self._FIELDS))
        object.__setattr__(self, "_extra", dict(self._ACCEPTED))
        object.__setattr__(self, "_config", {})
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        name = self._ALIASES.get(name, name)
        if name in values:
            value = values[name]
            return OptLevel(value) if name == "optimization_level" else value
        extra = object.__getattribute__(self, "_extra")
        if name in extra:
            return extra[name]
        raise AttributeError(f"SessionOptions has no field '{name}'")

    def __setattr__(self, name, value):
        name = self._ALIASES.get(name, name)
        if name in self._values:
            self._values[name] = self._normalise(name, value)
        elif name in self._extra:
            self._extra[name] = value
        else:
            known = ", ".join(sorted(list(self._FIELDS) + list(self._ALIASES) + list(self._ACCEPTED)))
            raise InvalidArgument(f"SessionOptions: unknown field '{name}' (known: {known})")

    @staticmethod
    def _normalise(name, value):
        if name == "optimization_level":
            return _opt_level_value(value)
        if name == "execution_mode" and isinstance(value, ExecutionMode):
            return "parallel" if value == ExecutionMode.ORT_PARALLEL else "sequential"
        if name == "disabled_passes":
            return tuple(value)
        if name == "compile_cache_dir":
            return os.path.expanduser(os.fspath(value)) if value else ""
        if name in ("num_threads", "memory_limit_mb"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgument(f"SessionOptions.{name}: expected an int, got {value!r}")
        return value

    def add_session_config_entry(self, key, value):
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key):
        return self._config[key]

    def register_custom_ops_library(self, library_path):
        """Loads a custom-op shared library (ONNX Runtime's call; the library exports
        PyFlameRT_RegisterCustomOps, see devices/custom_op_api.h). Its kernels are registered
        process-wide at once, so every session created afterwards finds them."""
        from .custom_ops import register_custom_ops_library
        register_custom_ops_library(library_path)

    def to_native(self):
        """The dict the native core reads."""
        native = dict(self._values)
        native["optimization_level"] = int(native["optimization_level"])
        native["disabled_passes"] = list(native["disabled_passes"])
        return native

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"SessionOptions({fields})"
