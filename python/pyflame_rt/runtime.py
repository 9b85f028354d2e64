"""The process-wide actor runtime (CAF): sized once, shut down cleanly at exit."""
import atexit
import sys

from . import _pyflame_rt
from .errors import InvalidArgument


def configure_actor_runtime(threads=0):
    """Scheduler threads of the actor system (0 = one per core); call before the first batcher."""
    _pyflame_rt.configure_actor_runtime(int(threads))


def actor_runtime_threads():
    """Threads of the running actor system, 0 when it is not running."""
    return _pyflame_rt.actor_runtime_threads()


# How long interpreter exit waits for actors still running after their runs were told to stop.
EXIT_GRACE_MS = 2000


def shutdown(grace_ms=None):
    """Stops every batcher (queued requests are answered Unavailable), pipeline and served stage,
    and the actor system. Runs at interpreter exit; safe to call more than once.

    grace_ms=None waits for every actor to finish. With grace_ms, the wait ends at that bound:
    actors still running then (a frame inside a kernel that does not check its run, e.g. one
    large MatMul) are left to finish on their own and their count is returned (0: everything
    stopped). A later batcher or pipeline starts a fresh actor system either way."""
    if grace_ms is None:
        _pyflame_rt.shutdown()
        return 0
    return _pyflame_rt.shutdown_within(check_grace_ms("shutdown: grace_ms", grace_ms))


# The longest shutdown grace accepted (an hour), as `pyflame-rt serve --shutdown-grace-ms`.
MAX_SHUTDOWN_GRACE_MS = 3600000


def check_grace_ms(where, grace_ms):
    """A grace in milliseconds (shutdown, serve, StageServer.stop, the model server), as an int."""
    if isinstance(grace_ms, bool) or not isinstance(grace_ms, (int, float)) \
            or not 0 <= grace_ms <= MAX_SHUTDOWN_GRACE_MS:
        raise InvalidArgument(f"{where}: expected a number of milliseconds in [0, {MAX_SHUTDOWN_GRACE_MS}], "
                              f"got {grace_ms!r}")
    return int(grace_ms)


def _shutdown_at_exit():
    # Runs still in progress stop at their next check (rt.Unavailable "the interpreter is
    # exiting"); the exit waits at most EXIT_GRACE_MS for the actors that run them.
    left = _pyflame_rt.shutdown_at_exit(EXIT_GRACE_MS)
    if left:
        sys.stderr.write(f"pyflame_rt: exiting with {left} actor(s) still running after {EXIT_GRACE_MS} ms (a run "
                         "inside a kernel that does not check its deadline); they end with the process\n")


atexit.register(_shutdown_at_exit)


def limit_counters():
    """How often each limit stopped something in this process: {"models_too_large",
    "runs_deadline_exceeded", "runs_memory_exceeded", "runs_terminated", "streams_idle_expired"}."""
    return dict(_pyflame_rt.limit_counters())
