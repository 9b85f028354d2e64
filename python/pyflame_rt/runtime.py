"""The process-wide actor runtime (CAF): sized once, shut down cleanly at exit."""
import atexit

from . import _pyflame_rt


def configure_actor_runtime(threads=0):
    """Scheduler threads of the actor system (0 = one per core); call before the first batcher."""
    _pyflame_rt.configure_actor_runtime(int(threads))


def actor_runtime_threads():
    """Threads of the running actor system, 0 when it is not running."""
    return _pyflame_rt.actor_runtime_threads()


def shutdown():
    """Stops every batcher (queued requests are answered Unavailable) and the actor system.
    Runs at interpreter exit; safe to call more than once."""
    _pyflame_rt.shutdown()


atexit.register(shutdown)


def limit_counters():
    """How often each limit stopped something in this process: {"models_too_large",
    "runs_deadline_exceeded", "runs_memory_exceeded", "runs_terminated", "streams_idle_expired"}."""
    return dict(_pyflame_rt.limit_counters())
