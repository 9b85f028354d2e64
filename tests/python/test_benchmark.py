"""pyflame_rt.benchmark.Benchmark: latency percentiles, throughput, memory and PNG plots."""

import sys

import numpy as np
import pytest

import pyflame_rt as rt
from pyflame_rt.benchmark import Benchmark, LatencyResult


class CountingSession:
    """A session that records the feeds it ran (checks what Benchmark really runs)."""

    def __init__(self, session):
        self.session = session
        self.batches = []

    def run(self, output_names, feed):
        self.batches.append(next(iter(feed.values())).shape[0])
        return self.session.run(output_names, feed)

    def get_inputs(self):
        return self.session.get_inputs()


@pytest.fixture
def session(add_relu_model):
    return rt.InferenceSession(add_relu_model)


FEED = {"x": np.arange(4, dtype=np.float32).reshape(1, 4)}


def test_latency_percentiles_come_from_the_measured_runs(session):
    counting = CountingSession(session)
    lat = Benchmark(counting).measure_latency(FEED, warmup_runs=3, benchmark_runs=25)
    assert len(counting.batches) == 28  # warmup + measured
    assert lat.runs == 25 and len(lat.latencies_ms) == 25
    assert 0 < lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
    assert lat.min_ms <= lat.mean_ms <= lat.max_ms and lat.std_ms >= 0
    assert lat.p50_ms in lat.latencies_ms  # nearest rank: a latency some run had


def test_nearest_rank_statistics():
    lat = LatencyResult([float(v) for v in range(1, 101)])  # 1..100 ms
    assert (lat.p50_ms, lat.p90_ms, lat.p99_ms) == (50.0, 90.0, 99.0)
    assert lat.mean_ms == pytest.approx(50.5)
    assert lat.std_ms == pytest.approx(np.std(np.arange(1, 101)))


def test_throughput_batches_the_feed_and_counts_samples(session, capsys):
    counting = CountingSession(session)
    t = Benchmark(counting).measure_throughput(FEED, duration_seconds=0.2, batch_size=4)  # progress: auto
    assert t.duration_seconds >= 0.2 and t.runs >= 1
    assert set(counting.batches) == {4}  # first dim 1 repeated to the batch
    assert len(counting.batches) == t.runs + 1  # one untimed run first
    assert t.samples_per_second == pytest.approx(4 * t.runs / t.duration_seconds)
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: no bar


def test_throughput_progress_bar_with_tqdm(session, capsys):
    pytest.importorskip("tqdm")
    Benchmark(session).measure_throughput(FEED, duration_seconds=0.1, progress=True)
    assert "throughput" in capsys.readouterr().err


def test_bad_arguments(session):
    bench = Benchmark(session)
    with pytest.raises(rt.InvalidArgument, match="batch_size"):
        bench.measure_throughput({"x": np.zeros((3, 4), np.float32)}, duration_seconds=0.1, batch_size=4)
    with pytest.raises(rt.InvalidArgument, match="benchmark_runs"):
        bench.measure_latency(FEED, benchmark_runs=0)
    with pytest.raises(rt.InvalidArgument, match="run"):
        Benchmark(object())


def test_profile_memory(session):
    mem = Benchmark(session).profile_memory(FEED, runs=5)
    assert mem.runs == 5
    assert 0 < mem.baseline_mb and 0 < mem.steady_mb <= mem.peak_mb
    mem2 = Benchmark(session).profile_memory(runs=2)  # random feed from the input shapes
    assert mem2.peak_mb >= mem2.steady_mb > 0


def test_plots_are_png(session, tmp_path):
    pytest.importorskip("matplotlib")
    bench = Benchmark(session)
    bench.measure_latency(FEED, warmup_runs=1, benchmark_runs=30)
    for path in (bench.plot_latency_histogram(tmp_path / "lat.png"), bench.plot_op_times(tmp_path / "ops.png", FEED)):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_without_matplotlib_name_the_package(session, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    bench = Benchmark(session)
    bench.measure_latency(FEED, warmup_runs=0, benchmark_runs=3)
    with pytest.raises(ImportError, match="python3-matplotlib"):
        bench.plot_latency_histogram(tmp_path / "lat.png")
