"""Benchmark: latency percentiles, throughput, memory and plots of one session.

    from pyflame_rt.benchmark import Benchmark
    bench = Benchmark(session)
    lat = bench.measure_latency({"x": x}, warmup_runs=10, benchmark_runs=100)
    print(lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.mean_ms, lat.std_ms)
    tput = bench.measure_throughput({"x": x}, duration_seconds=5, batch_size=8)
    print(tput.samples_per_second)
    mem = bench.profile_memory({"x": x})
    print(mem.peak_mb, mem.steady_mb)
    bench.plot_latency_histogram("latency.png")      # needs matplotlib (python3-matplotlib)
    bench.plot_op_times("ops.png", {"x": x})

Works with any object that has run(output_names, feed) (an onnxruntime session too, for side by
side numbers); plot_op_times needs PyFlameRT's run_with_profiling. Percentiles are nearest-rank
(a latency some run really had), as in `pyflame-rt perf`. Memory figures are the whole
process's resident set (Linux /proc), so they include Python and anything else loaded.
"""

import math
import sys
import time

from .errors import InvalidArgument

_MATPLOTLIB_HINT = ("plots need matplotlib, which is not installed: install Debian's python3-matplotlib "
                    "(apt-get install python3-matplotlib)")


def _nearest_rank(sorted_values, q):
    if not sorted_values:
        return 0.0
    rank = min(max(int(math.ceil(q * len(sorted_values))), 1), len(sorted_values))
    return sorted_values[rank - 1]


class LatencyResult:
    """Latencies of benchmark_runs runs, in milliseconds."""

    def __init__(self, latencies_ms):
        self.latencies_ms = list(latencies_ms)
        ordered = sorted(self.latencies_ms)
        n = len(ordered)
        self.runs = n
        self.mean_ms = sum(ordered) / n if n else 0.0
        self.std_ms = math.sqrt(sum((v - self.mean_ms) ** 2 for v in ordered) / n) if n else 0.0
        self.min_ms = ordered[0] if n else 0.0
        self.max_ms = ordered[-1] if n else 0.0
        self.p50_ms = _nearest_rank(ordered, 0.50)
        self.p90_ms = _nearest_rank(ordered, 0.90)
        self.p95_ms = _nearest_rank(ordered, 0.95)
        self.p99_ms = _nearest_rank(ordered, 0.99)

    def as_dict(self):
        return {k: getattr(self, k) for k in ("runs", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms",
                                              "p90_ms", "p95_ms", "p99_ms")}

    def __repr__(self):
        return (f"LatencyResult(runs={self.runs}, p50={self.p50_ms:.3f} ms, p90={self.p90_ms:.3f} ms, "
                f"p99={self.p99_ms:.3f} ms, mean={self.mean_ms:.3f} ms, std={self.std_ms:.3f} ms)")


class ThroughputResult:
    """Runs and samples (runs x batch_size) per second of wall time."""

    def __init__(self, runs, seconds, batch_size):
        self.runs = runs
        self.duration_seconds = seconds
        self.batch_size = batch_size
        self.runs_per_second = runs / seconds if seconds > 0 else 0.0
        self.samples_per_second = self.runs_per_second * batch_size

    def __repr__(self):
        return (f"ThroughputResult({self.samples_per_second:.1f} samples/s, {self.runs} runs of batch "
                f"{self.batch_size} in {self.duration_seconds:.2f} s)")


class MemoryResult:
    """Resident memory of the process, in MB (2**20 bytes): before the runs (baseline), at its
    highest during them (peak) and after them (steady)."""

    def __init__(self, baseline_mb, peak_mb, steady_mb, runs):
        self.baseline_mb = baseline_mb
        self.peak_mb = peak_mb
        self.steady_mb = steady_mb
        self.runs = runs

    def __repr__(self):
        return (f"MemoryResult(peak={self.peak_mb:.1f} MB, steady={self.steady_mb:.1f} MB, "
                f"baseline={self.baseline_mb:.1f} MB)")


def _proc_status_mb(field):
    """VmRSS / VmHWM of this process in MB, from /proc/self/status (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"/proc/self/status has no {field} line: memory profiling needs Linux")


def _reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0); False when the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _batch_feed(input_feed, batch_size):
    """The feed with every input's first dim equal to batch_size: as given when it already is,
    else inputs of first dim 1 repeated (test data preparation, not the runtime's work)."""
    import numpy as np
    out = {}
    for name, value in input_feed.items():
        arr = np.asarray(value)
        if arr.ndim == 0 or arr.shape[0] == batch_size:
            out[name] = arr
        elif arr.shape[0] == 1:
            out[name] = np.ascontiguousarray(np.repeat(arr, batch_size, axis=0))
        else:
            raise InvalidArgument(f"measure_throughput: input '{name}' has first dim {arr.shape[0]}; "
                                  f"batch_size={batch_size} needs it to be 1 or {batch_size}")
    return out


def _feed_batch(input_feed):
    for value in input_feed.values():
        shape = getattr(value, "shape", ())
        return int(shape[0]) if len(shape) else 1
    return 1


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(_MATPLOTLIB_HINT) from e
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


class Benchmark:
    """Measures one session: Benchmark(session, output_names=None)."""

    def __init__(self, session, output_names=None):
        if not callable(getattr(session, "run", None)):
            raise InvalidArgument(f"Benchmark: expected a session with run(), got {type(session).__name__}")
        self.session = session
        self.output_names = output_names
        self.last_latency = None

    def _check_feed(self, input_feed):
        if not isinstance(input_feed, dict) or not input_feed:
            raise InvalidArgument(f"input_feed: expected a dict of input name -> array, got {input_feed!r:.80}")

    def _run(self, feed):
        return self.session.run(self.output_names, feed)

    def measure_latency(self, input_feed, warmup_runs=10, benchmark_runs=100):
        """Times benchmark_runs runs one by one after warmup_runs untimed ones; a LatencyResult
        (p50_ms, p90_ms, p99_ms, mean_ms, std_ms, ...)."""
        self._check_feed(input_feed)
        if int(benchmark_runs) < 1:
            raise InvalidArgument(f"benchmark_runs: expected at least 1, got {benchmark_runs}")
        for _ in range(int(warmup_runs)):
            self._run(input_feed)
        latencies = []
        for _ in range(int(benchmark_runs)):
            t0 = time.perf_counter_ns()
            self._run(input_feed)
            latencies.append((time.perf_counter_ns() - t0) / 1e6)
        self.last_latency = LatencyResult(latencies)
        return self.last_latency

    def measure_throughput(self, input_feed, duration_seconds=5.0, batch_size=None, progress=None):
        """Runs back to back for duration_seconds; a ThroughputResult (samples_per_second).

        batch_size: samples per run. None takes the first dim of the first input; otherwise
        inputs of first dim 1 are repeated to batch_size. progress: a tqdm bar (None: only
        when stderr is a terminal and tqdm, Debian's python3-tqdm, is installed)."""
        self._check_feed(input_feed)
        if float(duration_seconds) <= 0:
            raise InvalidArgument(f"duration_seconds: expected > 0, got {duration_seconds}")
        if batch_size is None:
            feed, batch = input_feed, _feed_batch(input_feed)
        else:
            batch = int(batch_size)
            if batch < 1:
                raise InvalidArgument(f"batch_size: expected at least 1, got {batch_size}")
            feed = _batch_feed(input_feed, batch)
        self._run(feed)  # one untimed run: first-run allocations are not throughput
        bar = self._progress_bar(duration_seconds, progress)
        runs = 0
        start = time.perf_counter()
        last = start
        elapsed = 0.0
        try:
            while elapsed < duration_seconds:
                self._run(feed)
                runs += 1
                now = time.perf_counter()
                elapsed = now - start
                if bar is not None:
                    bar.update(min(now, start + duration_seconds) - last)
                    bar.set_postfix(samples_per_s=f"{runs * batch / elapsed:.1f}", refresh=False)
                    last = now
        finally:
            if bar is not None:
                bar.close()
        return ThroughputResult(runs, elapsed, batch)

    @staticmethod
    def _progress_bar(duration_seconds, progress):
        if progress is None:
            progress = sys.stderr.isatty()
        if not progress:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            if progress is True and sys.stderr.isatty():
                print("(no progress bar: install Debian's python3-tqdm)", file=sys.stderr)
            return None
        return tqdm(total=float(duration_seconds), unit="s", desc="throughput",
                    bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s {postfix}")

    def profile_memory(self, input_feed=None, runs=20):
        """Resident memory around `runs` runs: a MemoryResult (peak_mb, steady_mb, baseline_mb).
        input_feed None: random float inputs of the session's shapes (symbolic dims = 1)."""
        feed = self._random_feed() if input_feed is None else input_feed
        self._check_feed(feed)
        baseline = _proc_status_mb("VmRSS")
        reset = _reset_peak_rss()
        for _ in range(max(int(runs), 1)):
            self._run(feed)
        steady = _proc_status_mb("VmRSS")
        # Without the reset VmHWM is the process's lifetime peak: still an upper bound.
        peak = max(_proc_status_mb("VmHWM"), steady)
        result = MemoryResult(baseline, peak, steady, max(int(runs), 1))
        result.peak_is_lifetime = not reset
        return result

    def _random_feed(self):
        import numpy as np
        rng = np.random.default_rng(0)
        feed = {}
        for arg in self.session.get_inputs():
            shape = [d if isinstance(d, int) and d >= 0 else 1 for d in arg.shape]
            if "float" not in arg.type:
                raise InvalidArgument(f"profile_memory: input '{arg.name}' is {arg.type}: give input_feed")
            dtype = np.float64 if "double" in arg.type else np.float32
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
        return feed

    # Plots --------------------------------------------------------------------------------

    def plot_latency_histogram(self, path, result=None, bins=40):
        """Saves a histogram of a LatencyResult's latencies (default: the last measured) as PNG."""
        result = result or self.last_latency
        if result is None:
            raise InvalidArgument("plot_latency_histogram: call measure_latency first or pass result=")
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.hist(result.latencies_ms, bins=bins, color="#4c72b0")
        for label, value, style in (("p50", result.p50_ms, "-"), ("p90", result.p90_ms, "--"),
                                    ("p99", result.p99_ms, ":")):
            ax.axvline(value, color="#c44e52", linestyle=style, label=f"{label} {value:.3f} ms")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("runs")
        ax.set_title(f"latency of {result.runs} runs")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
        return path

    def plot_op_times(self, path, input_feed, top=20):
        """Runs once with per-node timing (run_with_profiling) and saves the time per op type,
        largest first (at most `top` bars), as PNG."""
        self._check_feed(input_feed)
        if not callable(getattr(self.session, "run_with_profiling", None)):
            raise InvalidArgument("plot_op_times needs a PyFlameRT session (run_with_profiling)")
        profile = self.session.run_with_profiling(input_feed)
        totals = list(profile.by_op_type().items())[:int(top)]
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(totals) + 1.5))
        names = [k for k, _ in totals][::-1]
        values = [v / 1000.0 for _, v in totals][::-1]
        ax.barh(names, values, color="#55a868")
        ax.set_xlabel("time per run (ms)")
        ax.set_title(f"time per op type ({profile.total_us / 1000.0:.3f} ms in all)")
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
        return path
