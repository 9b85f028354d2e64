"""PyFlameRT: an inference runtime with ONNX Runtime's Python API.

    import pyflame_rt as rt
    session = rt.InferenceSession("model.onnx")
    outputs = session.run(None, {"input": x})
"""

import os as _os

# OpenMP workers spin for milliseconds after each parallel region by default; beside other
# busy processes a 2-thread run then collapses 20-50x. A short spin keeps back-to-back kernels
# warm (devices/omp_wait.h has the measurements). libgomp reads it once, when our native
# module loads below; a policy the user chose wins.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from . import errors  # noqa: E402  (the environment above must be set before the native module loads)
from .errors import (DeadlineExceeded, Fail, InvalidArgument, InvalidGraph, InvalidProtobuf,
                     NoSuchFile, NotFound, NotImplemented, PyFlameRTError, ResourceExhausted,
                     RuntimeException, Unavailable)
from .batching import Batcher
from .pipeline import Pipeline, PipelineResult
from .remote import RemoteStage, StageServer, serve
from .runtime import actor_runtime_threads, configure_actor_runtime, shutdown
from .streaming import Stream
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
