"""Exception types, one per kind of failure (the names ONNX Runtime users already catch).

Every exception derives from PyFlameRTError and carries the native status code it stands for
(`code`). The table from code to class is built from the native core's list of codes
(graph/status.cpp), so a code added there without a class here fails at import, not later.
ONNX Runtime's class names are also importable from pyflame_rt.capi.onnxruntime_pybind11_state.
"""


class PyFlameRTError(RuntimeError):
    """Base class of every error raised by pyflame_rt."""

    code = None


class Fail(PyFlameRTError):
    """A failure with no more specific kind."""

    code = "Fail"


class InvalidArgument(PyFlameRTError, ValueError):
    """Bad input from the caller: a feed, an option, a shape or a dtype."""

    code = "InvalidArgument"


class NoSuchFile(PyFlameRTError, FileNotFoundError):
    """A model path that does not exist or cannot be read."""

    code = "NoSuchFile"


class InvalidProtobuf(PyFlameRTError):
    """A model file that does not parse (truncated, or not a model at all)."""

    code = "InvalidProtobuf"


class InvalidGraph(PyFlameRTError):
    """A model that parses but is not a valid graph (cycle, dangling edge, bad attribute)."""

    code = "InvalidGraph"


class NotImplementedFailure(PyFlameRTError, NotImplementedError):
    """An op, attribute, dtype or feature that is not supported.

    ONNX Runtime calls it NotImplemented; that name is exported by the package and by
    pyflame_rt.capi.onnxruntime_pybind11_state, not here, where it would shadow the builtin."""

    code = "NotImplemented"


class NotFound(PyFlameRTError, KeyError):
    """An unknown name: an input, a node, a registered object."""

    code = "NotFound"

    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


class RuntimeException(PyFlameRTError):
    """A kernel failed while running the model."""

    code = "RuntimeError"


class ResourceExhausted(PyFlameRTError, MemoryError):
    """A memory or queue limit was exceeded."""

    code = "ResourceExhausted"


class Unavailable(PyFlameRTError):
    """A service, device or queue cannot take the request now."""

    code = "Unavailable"


class DeadlineExceeded(PyFlameRTError, TimeoutError):
    """A wait ran past its deadline."""

    code = "DeadlineExceeded"


def _build_table():
    from . import _pyflame_rt
    classes = {cls.code: cls for cls in PyFlameRTError.__subclasses__() if cls.code}
    native = [name for name in _pyflame_rt.status_code_names() if name != "OK"]
    missing = [name for name in native if name not in classes]
    if missing:
        raise ImportError(f"pyflame_rt.errors has no exception class for native status codes {missing}")
    return {name: classes[name] for name in native}


_BY_CODE = _build_table()


def exception_for_code(code_name):
    """The exception class for a native status code name."""
    return _BY_CODE.get(code_name, Fail)
