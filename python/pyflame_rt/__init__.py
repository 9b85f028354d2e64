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
from .pipeline import Pipeline, PipelineResult
from .remote import RemoteStage, StageServer, serve
from .runtime import actor_runtime_threads, configure_actor_runtime, shutdown
from .streaming import Stream
from . import serving
from .options import ExecutionMode, GraphOptimizationLevel, OptLevel, SessionOptions
from .session import (InferenceSession, ModelMetadata, NodeArg, OpProfile, Profile, RunOptions, get_all_providers,
                      get_available_providers, get_device)

__version__ = "0.1.0"

__all__ = [
    "InferenceSession", "SessionOptions", "RunOptions", "NodeArg", "ModelMetadata", "OptLevel", "Profile", "OpProfile",
    "GraphOptimizationLevel", "ExecutionMode", "get_available_providers", "get_all_providers",
    "get_device", "errors", "PyFlameRTError", "Fail", "InvalidArgument", "NoSuchFile",
    "InvalidProtobuf", "InvalidGraph", "NotImplemented", "NotFound", "RuntimeException",
    "ResourceExhausted", "Unavailable", "DeadlineExceeded", "Batcher", "Stream", "Pipeline", "PipelineResult", "shutdown",
    "configure_actor_runtime", "actor_runtime_threads", "serve", "RemoteStage", "StageServer",
]
