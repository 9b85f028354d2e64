"""Streams: a model fed chunk by chunk, with windows, overlap and hidden state.

    stream = session.create_stream(chunk_size=16000, overlap=1600, stateful=True)
    for chunk in audio_chunks:
        result = stream.process(chunk)     # [] until a window is complete
    tail = stream.flush()                  # end of stream: the last partial window
    stream.reset()                         # a new sequence: initial state, nothing buffered
"""
from . import _pyflame_rt


class Stream:
    """One sequence. process() returns every model output for the windows the chunk completed:
    outputs along the time axis without the repeated overlap, other outputs one row per window
    (axis 0), state outputs their latest value; [] when no window completed yet."""

    def __init__(self, session, **options):
        options = {k: v for k, v in options.items() if v is not None}
        self._native = _pyflame_rt.Stream(session._native, options)

    def process(self, chunk):
        return self._native.process(chunk)

    def flush(self):
        return self._native.flush()

    def reset(self):
        self._native.reset()

    def close(self):
        self._native.close()

    @property
    def name(self):
        return self._native.name()

    @property
    def input_name(self):
        """The model input the chunks feed."""
        return self._native.input_name()

    @property
    def window(self):
        """Samples per model run along the time axis (0: each chunk as it comes)."""
        return self._native.window()

    @property
    def windows_run(self):
        return self._native.windows_run()

    @property
    def idle_expired(self):
        """True once idle_timeout_ms freed the stream (later calls raise DeadlineExceeded)."""
        return self._native.idle_expired()

    @property
    def state_pairs(self):
        """{state input: output that carries its next value}."""
        return self._native.state_pairs()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Stream({self.name!r}, input={self.input_name!r}, window={self.window}, state={self.state_pairs})"
