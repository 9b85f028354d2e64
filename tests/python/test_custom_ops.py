"""Custom ops: a numpy function registered from Python and a C shared library's kernels, each
run by a model built with onnx.helper whose nodes use a custom domain."""

import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(REPO, "build", "lib", "libpfrt_test_custom_ops.so")


def custom_model(nodes, outputs, domain, initializers=()):
    graph = helper.make_graph(nodes, "custom", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(domain, 1)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture
def swish_model():
    """y = Swish_beta(Relu(x) - 1) + c, Swish in domain my.ops."""
    c = numpy_helper.from_array(np.array([0.5, -0.5, 1.0, 0.0], np.float32), "c")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    return custom_model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Sub", ["r", "one"], ["s"]),
         helper.make_node("Swish", ["s"], ["w"], domain="my.ops", beta=2.0, name="swish"),
         helper.make_node("Add", ["w", "c"], ["y"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], "my.ops", [c, one])


def test_numpy_kernel_runs_with_attributes(swish_model):
    calls = []

    @rt.custom_op("my.ops", "Swish")
    def swish(x, beta=1.0):
        calls.append(beta)
        return (x / (1.0 + np.exp(-beta * x))).astype(np.float32)

    try:
        assert "my.ops.Swish" in rt.custom_op_names()
        x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
        (y,) = rt.InferenceSession(swish_model).run(None, {"x": x})
        s = np.maximum(x, 0) - 1
        expected = s / (1 + np.exp(-2.0 * s)) + np.array([0.5, -0.5, 1.0, 0.0], np.float32)
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
        assert calls == [2.0]
    finally:
        assert rt.unregister_custom_op("my.ops", "Swish")


def test_several_outputs_and_python_errors():
    model = custom_model(
        [helper.make_node("SplitSign", ["x"], ["pos", "neg"], domain="my.ops", name="split")],
        [helper.make_tensor_value_info("pos", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("neg", TensorProto.FLOAT, ["n", 4])], "my.ops")
    rt.register_custom_op("my.ops", "SplitSign", lambda x: (np.maximum(x, 0), np.minimum(x, 0)))
    try:
        x = np.array([[1, -2, 3, -4]], np.float32)
        pos, neg = rt.InferenceSession(model).run(None, {"x": x})
        np.testing.assert_array_equal(pos, [[1, 0, 3, 0]])
        np.testing.assert_array_equal(neg, [[0, -2, 0, -4]])

        def broken(x):
            raise ValueError("kernel saw a bad value")
        rt.register_custom_op("my.ops", "SplitSign", broken)  # replaces the first kernel
        with pytest.raises(rt.RuntimeException, match="kernel saw a bad value"):
            rt.InferenceSession(model).run(None, {"x": x})
        rt.register_custom_op("my.ops", "SplitSign", lambda x: x)  # one array for two outputs
        with pytest.raises(rt.RuntimeException, match="returned 1 array"):
            rt.InferenceSession(model).run(None, {"x": x})
    finally:
        rt.unregister_custom_op("my.ops", "SplitSign")


def test_unregistered_op_is_not_implemented_and_builtin_domains_refused(swish_model):
    with pytest.raises(rt.PyFlameRTError, match="Swish"):
        rt.InferenceSession(swish_model)
    with pytest.raises(rt.InvalidArgument, match="built in"):
        rt.register_custom_op("", "Relu", lambda x: x)
    with pytest.raises(rt.InvalidArgument, match="callable"):
        rt.register_custom_op("my.ops", "X", 3)


def test_shared_library_kernels_through_session_options():
    assert os.path.exists(LIBRARY), "build the test library first (make build)"
    model = custom_model(
        [helper.make_node("ScaleAdd", ["x"], ["y"], domain="test.ops", scale=-2.0, bias=1.0),
         helper.make_node("CountPositive", ["y"], ["count"], domain="test.ops")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("count", TensorProto.INT64, [])], "test.ops")
    opts = rt.SessionOptions()
    opts.register_custom_ops_library(LIBRARY)  # ONNX Runtime's call
    x = np.array([[1, -2, 0.25, 3], [-1, 0.5, 0, 2]], np.float32)
    y, count = rt.InferenceSession(model, opts).run(None, {"x": x})
    np.testing.assert_allclose(y, x * -2.0 + 1.0, rtol=1e-6)
    assert count.dtype == np.int64 and int(count) == int(((x * -2.0 + 1.0) > 0).sum())


def test_missing_library_names_the_path():
    with pytest.raises(rt.NoSuchFile, match="no_such_ops.so"):
        rt.register_custom_ops_library("/tmp/no_such_ops.so")
