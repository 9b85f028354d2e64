"""Bad input gets a clear error of its own type, and the session stays usable."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import pyflame_rt as rt
from conftest import make_model


def test_missing_file():
    with pytest.raises(rt.NoSuchFile, match="/no/such/model.onnx"):
        rt.InferenceSession("/no/such/model.onnx")


def test_truncated_model(add_relu_model, tmp_path):
    data = open(add_relu_model, "rb").read()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(rt.InvalidProtobuf, match="truncated.onnx"):
        rt.InferenceSession(str(path))


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n" * 10)
    with pytest.raises(rt.InvalidProtobuf):
        rt.InferenceSession(str(path))


def test_graph_with_cycle(tmp_path):
    model = make_model(
        [helper.make_node("Relu", ["x", ], ["a"], name="n0"),
         helper.make_node("Add", ["a", "c"], ["b"], name="n1"),
         helper.make_node("Relu", ["b"], ["c"], name="n2")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    path = tmp_path / "cycle.onnx"
    onnx.save(model, str(path))
    with pytest.raises(rt.InvalidGraph, match="cycle"):
        rt.InferenceSession(str(path))


def test_unsupported_op_names_op_opset_node(tmp_path):
    model = make_model([helper.make_node("FancyOp", ["x"], ["y"], name="mystery", domain="com.example")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    path = tmp_path / "fancy.onnx"
    onnx.save(model, str(path))
    with pytest.raises(rt.NotImplemented) as info:
        rt.InferenceSession(str(path))
    message = str(info.value)
    assert "'FancyOp'" in message and "'mystery'" in message and "opset 1" in message


def _feed_errors():
    good = np.zeros((2, 4), np.float32)
    cases = [
        ({}, rt.InvalidArgument, r"missing input 'x'.*tensor\(float\).*\[batch,4\]"),
        ({"x": good.astype(np.float64)}, rt.InvalidArgument, r"'x'.*expected dtype tensor\(float\), got tensor\(double\)"),
        ({"x": np.zeros((8,), np.float32)}, rt.InvalidArgument, r"'x'.*expected rank 2.*got rank 1"),
        ({"x": np.zeros((2, 5), np.float32)}, rt.InvalidArgument, r"'x'.*dimension 1 must be 4.*got 5"),
        ({"x": good, "z": good}, rt.InvalidArgument, r"unknown input name 'z'.*'x'"),
    ]
    return cases


def test_feed_errors_name_input_expected_received(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    for feed, exc, pattern in _feed_errors():
        with pytest.raises(exc, match=pattern):
            sess.run(None, feed)
    # The session still works after every failure.
    (y,) = sess.run(None, {"x": np.ones((1, 4), np.float32)})
    np.testing.assert_array_equal(y, [[2, 0, 4, 0]])


def test_unknown_output_name(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    with pytest.raises(rt.InvalidArgument, match=r"unknown output name 'nope'.*'y'"):  # as ONNX Runtime
        sess.run(["nope"], {"x": np.ones((1, 4), np.float32)})
    assert sess.run(["y"], {"x": np.ones((1, 4), np.float32)})[0].shape == (1, 4)


def test_feed_must_be_a_dict(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    with pytest.raises(rt.InvalidArgument, match="input_feed"):
        sess.run(None, [np.ones((1, 4), np.float32)])


def test_kernel_error_is_runtime_and_session_survives(tmp_path):
    # Reshape to a shape with the wrong element count fails inside the kernel.
    model = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None]),
                        helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "reshape.onnx"
    onnx.save(model, str(path))
    sess = rt.InferenceSession(str(path))
    with pytest.raises(rt.PyFlameRTError, match="'r'"):
        sess.run(None, {"x": np.zeros(6, np.float32), "shape": np.array([4, 2], np.int64)})
    (y,) = sess.run(None, {"x": np.arange(6, dtype=np.float32), "shape": np.array([2, 3], np.int64)})
    assert y.shape == (2, 3)


def test_huge_allocation_is_an_error_not_a_crash(tmp_path):
    model = make_model([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="huge")],
                       [helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "huge.onnx"
    onnx.save(model, str(path))
    sess = rt.InferenceSession(str(path))
    with pytest.raises(rt.ResourceExhausted, match="'huge'"):
        sess.run(None, {"shape": np.array([1 << 31, 1 << 31], np.int64)})
    (y,) = sess.run(None, {"shape": np.array([2, 3], np.int64)})
    assert y.shape == (2, 3)
