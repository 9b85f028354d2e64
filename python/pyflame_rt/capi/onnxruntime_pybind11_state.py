"""ONNX Runtime's exception module: `from onnxruntime.capi.onnxruntime_pybind11_state import
Fail` keeps working after the import is changed to pyflame_rt."""

from ..errors import (DeadlineExceeded, Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile,
                      NotFound, NotImplementedFailure, PyFlameRTError, ResourceExhausted, RuntimeException,
                      Unavailable)

NotImplemented = NotImplementedFailure  # noqa: A001 - ONNX Runtime's name
EPFail = Fail  # ONNX Runtime's execution-provider failure
EngineError = Fail
NoModel = NoSuchFile

__all__ = ["DeadlineExceeded", "EPFail", "EngineError", "Fail", "InvalidArgument", "InvalidGraph",
           "InvalidProtobuf", "NoModel", "NoSuchFile", "NotFound", "NotImplemented", "PyFlameRTError",
           "ResourceExhausted", "RuntimeException", "Unavailable"]
