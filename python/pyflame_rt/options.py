"""SessionOptions and the enums users set on it.

The fields, their kinds and defaults come from the native core's table
(actors/session_option_fields.cpp): this module adds only ONNX Runtime's spellings
(intra_op_num_threads, graph_optimization_level, ExecutionMode.ORT_SEQUENTIAL, ...) and the
conversions between them, so code written for either API runs unchanged.
"""

import enum
import os

from . import _pyflame_rt
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
    """ONNX Runtime's execution modes; each also equals the seed API's string ("parallel")."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1

    @property
    def native(self):
        return "parallel" if self is ExecutionMode.ORT_PARALLEL else "sequential"

    def __eq__(self, other):
        if isinstance(other, str):
            return other in (self.native, self.name)
        return int.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = int.__hash__


_ORT_LEVEL = {0: GraphOptimizationLevel.ORT_DISABLE_ALL, 1: GraphOptimizationLevel.ORT_ENABLE_BASIC,
              2: GraphOptimizationLevel.ORT_ENABLE_EXTENDED, 3: GraphOptimizationLevel.ORT_ENABLE_ALL}


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


def _native_fields():
    """{name: (kind, default, doc)} from the native table."""
    return {name: (kind, default, doc) for name, kind, default, doc in _pyflame_rt.session_option_fields()}


class SessionOptions:
    """Options of an InferenceSession; every field can be passed to the constructor."""

    _FIELDS = _native_fields()
    # ONNX Runtime attribute names that map onto ours.
    _ALIASES = {
        "intra_op_num_threads": "num_threads",
        "graph_optimization_level": "optimization_level",
        "optimized_model_filepath": "optimized_model_path",
        "enable_mem_reuse": "enable_memory_reuse",
        "enable_mem_pattern": "enable_memory_reuse",
        "logid": "log_id",
    }

    def __init__(self, **kwargs):
        # Copies: a map or list default must not be shared between instances.
        values = {name: type(default)(default) if isinstance(default, (dict, list)) else default
                  for name, (kind, default, doc) in self._FIELDS.items()}
        object.__setattr__(self, "_values", values)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __getattr__(self, name):
        values = object.__getattribute__(self, "_values")
        field = self._ALIASES.get(name, name)
        if field not in values:
            raise AttributeError(f"SessionOptions has no field '{name}'")
        value = values[field]
        if name == "graph_optimization_level":
            return _ORT_LEVEL[value]
        if field == "optimization_level":
            return OptLevel(value)
        if field == "execution_mode":
            return ExecutionMode.ORT_PARALLEL if value == "parallel" else ExecutionMode.ORT_SEQUENTIAL
        if field == "log_severity_level" and name == "log_severity_level" and value < 0:
            return 2  # ONNX Runtime reports its default (warning) rather than "unset"
        if isinstance(value, (dict, list)):
            return type(value)(value)  # a copy: changes go through the setters
        return value

    def __setattr__(self, name, value):
        field = self._ALIASES.get(name, name)
        if field not in self._values:
            known = ", ".join(sorted(list(self._FIELDS) + list(self._ALIASES)))
            raise InvalidArgument(f"SessionOptions: unknown field '{name}' (known: {known})")
        self._values[field] = self._normalise(field, value)

    def _normalise(self, name, value):
        kind = self._FIELDS[name][0]
        if name == "optimization_level":
            return _opt_level_value(value)
        if name == "execution_mode":
            if isinstance(value, ExecutionMode):
                return value.native
            if isinstance(value, int) and not isinstance(value, bool):
                return ExecutionMode(value).native
        if name == "compile_cache_dir" or name == "optimized_model_path" or name == "profile_file_prefix":
            return os.path.expanduser(os.fspath(value)) if value else ""
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidArgument(f"SessionOptions.{name}: expected an int, got {value!r}")
        if kind == "bool":
            return bool(value)
        if kind == "str_list":
            return list(value)
        if kind in ("int_map", "str_map"):
            return dict(value)
        return value

    # ONNX Runtime's methods ------------------------------------------------------------------
    def add_session_config_entry(self, key, value):
        self._values["config_entries"][str(key)] = str(value)

    def get_session_config_entry(self, key):
        try:
            return self._values["config_entries"][key]
        except KeyError:
            raise InvalidArgument(f"SessionOptions: no session config entry '{key}'") from None

    def add_free_dimension_override_by_name(self, dim_name, dim_value):
        """Fixes every input dimension named dim_name (a symbolic dim such as "batch")."""
        self._set_map_entry("free_dimension_overrides", dim_name, dim_value)

    def add_free_dimension_override_by_denotation(self, dim_denotation, dim_value):
        """Fixes every input dimension whose ONNX denotation is dim_denotation ("DATA_BATCH")."""
        self._set_map_entry("free_dimension_overrides_by_denotation", dim_denotation, dim_value)

    def _set_map_entry(self, field, key, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{field}['{key}']: expected a size >= 0, got {value!r}")
        self._values[field][str(key)] = int(value)

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
        return native

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"SessionOptions({fields})"
