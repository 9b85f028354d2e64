"""Denormal floats and the CPU device (devices/cpu/denormals.h): kept by default, as in ONNX
Runtime, flushed to zero with its "session.set_denormal_as_zero" = "1", a bad value refused by
name, and the caller's own arithmetic (numpy here) untouched by a flushing run."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import pyflame_rt as rt
from conftest import make_model

N = 1 << 16  # enough elements for the Mul to run on two threads when it has them


def square_model():
    return make_model([helper.make_node("Mul", ["x", "x"], ["y"])],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [N])]).SerializeToString()


def square(options):
    session = rt.InferenceSession(square_model(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.full(N, 1e-20, np.float32)})[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_denormals_kept_by_default_and_flushed_when_asked(threads):
    def options(setting):
        o = rt.SessionOptions()
        o.intra_op_num_threads = threads
        if setting is not None:
            o.add_session_config_entry("session.set_denormal_as_zero", setting)
        return o
    tiny = np.finfo(np.float32).tiny
    for setting in (None, "0"):
        kept = square(options(setting))  # 1e-40 is a denormal
        assert np.all(kept > 0) and np.all(kept < tiny), setting
    assert np.all(square(options("1")) == 0)
    kept = square(options("0"))  # after a flushing run on this thread: its workers keep them again
    assert np.all(kept > 0) and np.all(kept < tiny)


def test_a_run_leaves_the_callers_denormals_alone():
    flush = rt.SessionOptions()
    flush.add_session_config_entry("session.set_denormal_as_zero", "1")
    assert np.all(square(flush) == 0)
    tiny = np.float32(1e-20)
    assert tiny * tiny > 0  # numpy on this thread still makes the denormal


def test_bad_denormal_setting_names_the_entry_and_the_values():
    options = rt.SessionOptions()
    options.add_session_config_entry("session.set_denormal_as_zero", "yes")
    with pytest.raises(rt.InvalidArgument, match=r"session.set_denormal_as_zero.*'0' or '1'.*'yes'"):
        rt.InferenceSession(square_model(), options)
