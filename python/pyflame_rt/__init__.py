"""PyFlameRT: an inference runtime with ONNX Runtime's Python API.

    import pyflame_rt as rt
    session = rt.InferenceSession("model.onnx")
    outputs = session.run(None, {"input": x})
"""

from . import _omp_env  # noqa: F401 - before _pyflame_rt loads libgomp: its wait policy
from . import _pyflame_rt, errors
from .errors import (DeadlineExceeded, Fail, InvalidArgument, InvalidGraph, InvalidProtobuf,
                     NoSuchFile, NotFound, NotImplementedFailure, PyFlameRTError, ResourceExhausted,
                     RuntimeException, Unavailable)
from . import capi
from .capi.onnxruntime_pybind11_state import NotImplemented  # noqa: A004 - ONNX Runtime's name
from .batching import Batcher
from .custom_ops import (custom_op, custom_op_names, register_custom_op, register_custom_ops_library,
                         unregister_custom_op)
from .pipeline import Pipeline, PipelineResult
from .remote import RemoteStage, StageServer, serve
from .runtime import actor_runtime_threads, configure_actor_runtime, limit_counters, shutdown
from .streaming import Stream
from .options import ExecutionMode, GraphOptimizationLevel, OptLevel, SessionOptions
from .compile_options import CompileOptions
from .session import (InferenceSession, ModelMetadata, NodeArg, OpProfile, Profile, RunOptions, get_all_providers,
                      get_available_providers, get_device)
from .iobinding import IOBinding, OrtValue
from .log import set_default_logger_severity, set_default_logger_verbosity

SessionIOBinding = IOBinding  # ONNX Runtime's name

# Submodules a session does not need, imported on first use (PEP 562): serving loads the second
# extension (_pyflame_rt_serving: HTTP, gRPC, ZeroMQ), compress and quantization load onnx and
# numpy. `rt.serving.ModelServer` and `from pyflame_rt import compress` work as before.
_LAZY_SUBMODULES = frozenset({"serving", "grpc_serving", "fastapi_serving", "client", "compress", "quantization",
                              "benchmark", "torch_import"})


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_SUBMODULES)


def set_seed(seed):
    """Seeds random ops without a seed attribute (RandomNormal, Dropout, ...): the same seed and
    the same sequence of runs give the same numbers."""
    _pyflame_rt.set_seed(int(seed))


def get_version_string():
    return __version__


def get_build_info():
    """One line: version, build type and compiler."""
    return _pyflame_rt.build_info()


__version__ = _pyflame_rt.__version__  # project(VERSION) in CMakeLists.txt

__all__ = [
    "CompileOptions",
    "InferenceSession", "SessionOptions", "RunOptions", "NodeArg", "ModelMetadata", "OptLevel", "Profile", "OpProfile",
    "GraphOptimizationLevel", "ExecutionMode", "get_available_providers", "get_all_providers",
    "get_device", "errors", "PyFlameRTError", "Fail", "InvalidArgument", "NoSuchFile",
    "InvalidProtobuf", "InvalidGraph", "NotImplemented", "NotImplementedFailure", "NotFound", "RuntimeException",
    "ResourceExhausted", "Unavailable", "DeadlineExceeded", "Batcher", "Stream", "Pipeline", "PipelineResult", "shutdown",
    "configure_actor_runtime", "actor_runtime_threads", "limit_counters", "serve", "RemoteStage", "StageServer",
    "OrtValue", "IOBinding", "SessionIOBinding", "set_seed", "set_default_logger_severity",
    "set_default_logger_verbosity", "get_version_string", "get_build_info", "capi",
    "custom_op", "register_custom_op", "unregister_custom_op", "custom_op_names", "register_custom_ops_library",
]
