"""Dynamic batching: concurrent requests for one model coalesced by the batching actor.

    batcher = session.create_batcher(max_batch_size=8, batch_timeout_ms=2)
    outputs = batcher.run(None, {"input": x})        # from many threads at once
    print(batcher.stats())                           # batches, mean_batch_size, rejections ...
"""
from . import _pyflame_rt
from .errors import InvalidArgument


class Batcher:
    """Requests from any number of threads; each call blocks (GIL released) until answered."""

    def __init__(self, session, name, max_batch_size=8, batch_timeout_ms=2.0, preferred_batch_sizes=(),
                 max_queue_size=1024, request_timeout_ms=60000, device_actors=1):
        """device_actors: batches computed at once, each on its share of the cores (with 2,
        one batch computes while the next forms)."""
        if isinstance(preferred_batch_sizes, (str, bytes)) or not hasattr(preferred_batch_sizes, "__iter__"):
            raise InvalidArgument(f"preferred_batch_sizes: expected a list of ints, got {preferred_batch_sizes!r}")
        options = {"max_batch_size": as_int("max_batch_size", max_batch_size),
                   "batch_timeout_ms": as_float("batch_timeout_ms", batch_timeout_ms),
                   "preferred_batch_sizes": [as_int("preferred_batch_sizes", p) for p in preferred_batch_sizes],
                   "max_queue_size": as_int("max_queue_size", max_queue_size),
                   "request_timeout_ms": as_int("request_timeout_ms", request_timeout_ms),
                   "device_actors": as_int("device_actors", device_actors)}
        self._native = _pyflame_rt.Batcher(session._native, name, options)

    def run(self, output_names, input_feed, priority=0):
        """One request; higher priority is served first. Raises ResourceExhausted when the queue is full."""
        if not isinstance(input_feed, dict):
            raise InvalidArgument(
                f"input_feed: expected a dict of input name -> numpy array, got {type(input_feed).__name__}")
        return self._native.run(_names(output_names), input_feed, _priority(priority))

    def run_many(self, output_names, input_feeds, priority=0):
        """Submits every feed at once and returns one output list per feed, in order."""
        if not isinstance(input_feeds, (list, tuple)):
            raise InvalidArgument(f"input_feeds: expected a list of dicts, got {type(input_feeds).__name__}")
        return self._native.run_many(_names(output_names), list(input_feeds), _priority(priority))

    def stats(self):
        """Counters: requests, batches, batched_requests, mean_batch_size, model_runs, queued,
        rejected_queue_full, rejected_invalid, deadline_exceeded, failed, device_restarts."""
        return self._native.stats()

    def close(self):
        """Answers whatever is still queued with Unavailable and stops the actors."""
        self._native.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _priority(priority):
    """The native side takes a C int: anything else is our InvalidArgument, not a TypeError."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not -2**31 <= priority < 2**31:
        raise InvalidArgument(f"priority: expected an int in [-2**31, 2**31), got {priority!r}")
    return priority


def as_int(name, value):
    """An option the native side takes as a C int64: anything else is our InvalidArgument (int("x")
    would raise ValueError, int(None) TypeError, a huge int an OverflowError later)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or \
            not -2**63 <= value < 2**63 or int(value) != value:
        raise InvalidArgument(f"{name}: expected an integer, got {value!r}")
    return int(value)


def as_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidArgument(f"{name}: expected a number, got {value!r}")
    return float(value)


def _names(output_names):
    if output_names is None:
        return None
    if isinstance(output_names, str):
        return [output_names]
    return list(output_names) or None
