"""Exception types, one per kind of failure (the names ONNX Runtime users already catch).

Every exception derives from PyFlameRTError; the native core picks the class from its status
code through exception_for_code().
"""


class PyFlameRTError(RuntimeError):
    """Base class of every error raised by pyflame_rt."""


class Fail(PyFlameRTError):
    """A failure with no more specific kind."""


class InvalidArgument(PyFlameRTError, ValueError):
    """Bad input from the caller: a feed, an option, a shape or a dtype."""


class NoSuchFile(PyFlameRTError, FileNotFoundError):
    """A model path that does not exist or cannot be read."""


class InvalidProtobuf(PyFlameRTError):
    """A model file that does not parse (truncated, or not a model at all)."""


class InvalidGraph(PyFlameRTError):
    """A model that parses but is not a valid graph (cycle, dangling edge, bad attribute)."""


class NotImplemented(PyFlameRTError, NotImplementedError):  # noqa: A001 - ONNX Runtime's name
    """An op, attribute, dtype or feature that is not supported."""


class NotFound(PyFlameRTError, KeyError):
    """An unknown name: an output, an input, a node."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


class RuntimeException(PyFlameRTError):
    """A kernel failed while running the model."""


class ResourceExhausted(PyFlameRTError, MemoryError):
    """A memory or queue limit was exceeded."""


class Unavailable(PyFlameRTError):
    """A service, device or queue cannot take the request now."""


class DeadlineExceeded(PyFlameRTError, TimeoutError):
    """A wait ran past its deadline."""


_BY_CODE = {
    "Fail": Fail,
    "InvalidArgument": InvalidArgument,
    "NoSuchFile": NoSuchFile,
    "InvalidProtobuf": InvalidProtobuf,
    "InvalidGraph": InvalidGraph,
    "NotImplemented": NotImplemented,
    "NotFound": NotFound,
    "RuntimeError": RuntimeException,
    "ResourceExhausted": ResourceExhausted,
    "Unavailable": Unavailable,
    "DeadlineExceeded": DeadlineExceeded,
}


def exception_for_code(code_name):
    """The exception class for a native status code name."""
    return _BY_CODE.get(code_name, Fail)
