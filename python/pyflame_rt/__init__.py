"""PyFlameRT: an inference runtime with ONNX Runtime's Python API.

    import pyflame_rt as rt
    session = rt.InferenceSession("model.onnx")
    outputs = session.run(None, {"input": x})
"""

from . import errors
from .errors import (DeadlineExceeded, Fail, InvalidArgument, InvalidGraph, InvalidProtobuf,
                     NoSuchFile, NotFound, NotImplemented, PyFlameRTError, ResourceExhausted,
                     RuntimeException, Unavailable)
from .batching import Batcher
from .custom_ops import (custom_op, custom_op_names, register_custom_op, register_custom_ops_library,
                         unregister_custom_op)
from .pipeline import Pipeline, PipelineResult
from .remote import RemoteStage, StageServer, serve
from .runtime import actor_runtime_threads, configure_actor_runtime, shutdown
from .streaming import Stream
from .options import ExecutionMode, GraphOptimizationLevel, OptLevel, SessionOptions
from .session import (InferenceSession, ModelMetadata, NodeArg, OpProfile, Profile, RunOptions, get_all_providers,
                      get_available_providers, get_device)

from ._pyflame_rt import __version__  # set once: project(VERSION) in CMakeLists.txt

__all__ = [
    "InferenceSession", "SessionOptions", "RunOptions", "NodeArg", "ModelMetadata", "OptLevel", "Profile", "OpProfile",
    "GraphOptimizationLevel", "ExecutionMode", "get_available_providers", "get_all_providers",
    "get_device", "errors", "PyFlameRTError", "Fail", "InvalidArgument", "NoSuchFile",
    "InvalidProtobuf", "InvalidGraph", "NotImplemented", "NotFound", "RuntimeException",
    "ResourceExhausted", "Unavailable", "DeadlineExceeded", "Batcher", "Stream", "Pipeline", "PipelineResult", "shutdown",
    "configure_actor_runtime", "actor_runtime_threads", "serve", "RemoteStage", "StageServer",
    "custom_op", "register_custom_op", "unregister_custom_op", "custom_op_names", "register_custom_ops_library",
]
