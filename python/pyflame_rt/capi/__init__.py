"""ONNX Runtime's module layout, for code that reaches exceptions through ort.capi."""

from . import onnxruntime_pybind11_state  # noqa: F401
