"""SessionOptions.memory_pool and enable_memory_reuse: accepted, and they change nothing in the
outputs (the CPU device's buffer pool only changes where intermediates live)."""

import os
import threading

import numpy as np
import pytest

import pyflame_rt as rt

CNN = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "models", "tiny_cnn.onnx")
SETTINGS = [(pool, reuse, mode) for pool in ("default", "arena", "custom") for reuse in (True, False)
            for mode in ("sequential", "parallel")]


def images(seed, batch=2):
    return np.random.default_rng(seed).standard_normal((batch, 3, 32, 32)).astype(np.float32)


def session(pool, reuse, mode):
    return rt.InferenceSession(CNN, rt.SessionOptions(memory_pool=pool, enable_memory_reuse=reuse,
                                                      execution_mode=mode, num_threads=2))


@pytest.mark.parametrize("pool,reuse,mode", SETTINGS)
def test_memory_options_change_nothing_in_the_outputs(pool, reuse, mode):
    plain = session("default", True, "sequential")
    sess = session(pool, reuse, mode)
    held = []
    for seed in range(3):
        x = {"image": images(seed)}
        (got,) = sess.run(None, x)
        np.testing.assert_array_equal(got, plain.run(None, x)[0])
        held.append((got, got.copy()))
    # Outputs handed out earlier are the caller's: later runs (same shapes, reused buffers)
    # must not have written into them.
    for got, copy in held:
        np.testing.assert_array_equal(got, copy)


@pytest.mark.parametrize("pool", ["default", "arena"])
def test_concurrent_runs_with_each_pool(pool):
    sess = session(pool, True, "sequential")
    expected = [sess.run(None, {"image": images(seed)})[0] for seed in range(4)]
    errors = []

    def worker(first):
        for i in range(20):
            seed = (first + i) % 4
            (y,) = sess.run(None, {"image": images(seed)})
            if not np.array_equal(y, expected[seed]):
                errors.append(seed)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_bad_memory_pool_names_option_expected_and_received():
    with pytest.raises(rt.InvalidArgument,
                       match=r"SessionOptions.memory_pool: expected one of 'default', 'arena', 'custom', got 'bump'"):
        rt.InferenceSession(CNN, rt.SessionOptions(memory_pool="bump"))
