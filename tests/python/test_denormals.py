"""Denormal floats and the CPU device (devices/cpu/denormals.h): flushed to zero by default,
kept with ONNX Runtime's "session.set_denormal_as_zero" = "0", a bad value refused by name,
and the caller's own arithmetic (numpy here) untouched by a run."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import pyflame_rt as rt
from conftest import make_model


def square_model():
    return make_model([helper.make_node("Mul", ["x", "x"], ["y"])],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [256])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [256])]).SerializeToString()


def square(options):
    session = rt.InferenceSession(square_model(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.full(256, 1e-20, np.float32)})[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_denormals_flushed_by_default_and_kept_when_asked(threads):
    options = rt.SessionOptions()
    options.intra_op_num_threads = threads
    assert np.all(square(options) == 0)  # 1e-40 is a denormal
    keep = rt.SessionOptions()
    keep.intra_op_num_threads = threads
    keep.add_session_config_entry("session.set_denormal_as_zero", "0")
    kept = square(keep)
    assert np.all(kept > 0) and np.all(kept < np.finfo(np.float32).tiny)
    flush = rt.SessionOptions()
    flush.intra_op_num_threads = threads
    flush.add_session_config_entry("session.set_denormal_as_zero", "1")
    assert np.all(square(flush) == 0)


def test_a_run_leaves_the_callers_denormals_alone():
    square(rt.SessionOptions())
    tiny = np.float32(1e-20)
    assert tiny * tiny > 0  # numpy on this thread still makes the denormal


def test_bad_denormal_setting_names_the_entry_and_the_values():
    options = rt.SessionOptions()
    options.add_session_config_entry("session.set_denormal_as_zero", "yes")
    with pytest.raises(rt.InvalidArgument, match=r"session.set_denormal_as_zero.*'0' or '1'.*'yes'"):
        rt.InferenceSession(square_model(), options)
