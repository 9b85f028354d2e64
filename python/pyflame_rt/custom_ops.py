"""Custom ops: your own kernels for op types in your own ONNX domain.

    import numpy as np
    import pyflame_rt as rt

    @rt.custom_op("my.ops", "Swish")
    def swish(x, beta=1.0):                  # node inputs as arrays, attributes as keywords
        return x / (1.0 + np.exp(-beta * x))  # one array, or a tuple for several outputs

    sess = rt.InferenceSession("model_with_swish.onnx")   # nodes of domain my.ops, type Swish

Compiled kernels come from a shared library exporting PyFlameRT_RegisterCustomOps (the C ABI in
devices/custom_op_api.h): `rt.register_custom_ops_library("libmy_ops.so")`, or ONNX Runtime's
`SessionOptions.register_custom_ops_library(path)`.

Registrations are process-wide and found by sessions created afterwards. The built-in domains
("", "ai.onnx", "pyflame_rt") are refused. A Python kernel runs with the GIL held, on the
thread that runs the node; its inputs are copies it may keep.
"""

import os

from . import _pyflame_rt


def register_custom_op(domain, op_type, fn):
    """Registers fn(*inputs, **attributes) -> array or tuple of arrays as the kernel of
    (domain, op_type), replacing any earlier one."""
    if not callable(fn):
        from .errors import InvalidArgument
        raise InvalidArgument(f"register_custom_op: fn must be callable, got {type(fn).__name__}")
    _pyflame_rt.register_custom_op(str(domain), str(op_type), fn)
    return fn


def custom_op(domain, op_type):
    """Decorator form of register_custom_op."""
    def wrap(fn):
        return register_custom_op(domain, op_type, fn)
    return wrap


def unregister_custom_op(domain, op_type):
    """Removes a kernel; returns False when none was registered under that name."""
    return _pyflame_rt.unregister_custom_op(str(domain), str(op_type))


def custom_op_names():
    """'domain.op_type' of every registered custom op, sorted."""
    return _pyflame_rt.custom_op_names()


def register_custom_ops_library(library_path):
    """Loads a shared library of compiled custom kernels; returns the ops it registered."""
    return _pyflame_rt.load_custom_ops_library(os.fspath(library_path))
