"""The process logger, shared with the native core (graph/logging.h, spdlog on stderr).

Severities are ONNX Runtime's: 0 verbose, 1 info, 2 warning (default), 3 error, 4 fatal.
Lines look like "2026-11-30 03:12:00.123 [W:pyflame_rt:session-1] message". Session
warnings are also raised as Python RuntimeWarnings (InferenceSession does that), and Python
code warns through warn() below so both channels carry the same message.
"""

import warnings

from . import _pyflame_rt
from .errors import InvalidArgument

VERBOSE, INFO, WARNING, ERROR, FATAL = range(5)


def set_default_logger_severity(severity):
    """Lines below this severity are not written (sessions and runs may set their own)."""
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 4:
        raise InvalidArgument(f"severity: expected 0 (verbose) .. 4 (fatal), got {severity!r}")
    _pyflame_rt.set_default_logger_severity(severity)


def get_default_logger_severity():
    return _pyflame_rt.get_default_logger_severity()


def set_default_logger_verbosity(verbosity):
    """How detailed verbose lines are (only with severity 0)."""
    if isinstance(verbosity, bool) or not isinstance(verbosity, int) or verbosity < 0:
        raise InvalidArgument(f"verbosity: expected an int >= 0, got {verbosity!r}")
    _pyflame_rt.set_default_logger_verbosity(verbosity)


def log(severity, message, log_id="python"):
    """Writes one line through the core's logger."""
    _pyflame_rt.log(int(severity), str(log_id), str(message))


def warn(message, log_id="python", stacklevel=2):
    """A warning on both channels: the logger and Python's warnings (RuntimeWarning)."""
    log(WARNING, message, log_id)
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)
