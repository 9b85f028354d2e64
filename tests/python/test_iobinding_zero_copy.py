"""IOBinding with pre-allocated outputs: the engine writes the output into the caller's buffer
(no copy) where the last writer is a native CPU kernel in the plain layout, and copies it in
everywhere else; either way the bound array holds the result and keeps its address."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt
from conftest import make_model


def _save(tmp_path, model, name):
    import onnx
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def _resnet_block(tmp_path):
    """y = Relu(Conv(Relu(Conv(x))) + x): a ResNet basic block, x: float[1, 4, 8, 8]."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.2, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.2, "w2")
    b2 = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b2")
    model = make_model(
        [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
         helper.make_node("Add", ["c2", "x"], ["s"]),
         helper.make_node("Relu", ["s"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w1, w2, b2])
    return _save(tmp_path, model, "block.onnx")


def _matmul(tmp_path):
    w = numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(8, 5) / 10, "w")
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], [w])
    return _save(tmp_path, model, "matmul.onnx")


def _run_bound(sess, x, y):
    io = sess.io_binding()
    io.bind_cpu_input("x", x)
    io.bind_output("y", "cpu", 0, y.dtype, y.shape, y.ctypes.data)
    sess.run_with_iobinding(io)
    return io


@pytest.mark.parametrize("build, shape", [(_resnet_block, (1, 4, 8, 8)), (_matmul, (3, 8))])
def test_bound_output_is_written_in_place(tmp_path, build, shape):
    sess = rt.InferenceSession(build(tmp_path))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    expected = sess.run(None, {"x": x})[0]
    y = np.full(expected.shape, np.nan, np.float32)
    address = y.ctypes.data
    io = _run_bound(sess, x, y)
    assert io.outputs_written_in_place() == ["y"]  # no copy: the kernel wrote into y
    assert y.ctypes.data == address
    np.testing.assert_array_equal(y, expected)
    assert io.get_outputs()[0].data_ptr() == address
    np.testing.assert_array_equal(io.copy_outputs_to_cpu()[0], expected)


def test_bound_buffer_is_never_handed_to_a_later_run(tmp_path):
    # The arena keeps buffers across runs: the caller's must not be among them.
    sess = rt.InferenceSession(_resnet_block(tmp_path))
    rng = np.random.default_rng(2)
    x1, x2 = (rng.standard_normal((1, 4, 8, 8)).astype(np.float32) for _ in range(2))
    y = np.empty((1, 4, 8, 8), np.float32)
    io = _run_bound(sess, x1, y)
    assert io.outputs_written_in_place() == ["y"]
    kept = y.copy()
    for _ in range(3):
        other = sess.run(None, {"x": x2})[0]
    np.testing.assert_array_equal(y, kept)
    assert not np.array_equal(other, kept)


def test_output_from_a_reference_kernel_is_copied_in(tmp_path):
    # Hardmax has no native kernel (Erf, used here before, now has one and writes in place).
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    sess = rt.InferenceSession(_save(tmp_path, model, "hardmax.onnx"))
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    y = np.zeros((2, 3), np.float32)
    address = y.ctypes.data
    io = _run_bound(sess, x, y)
    assert io.outputs_written_in_place() == []  # the fallback: a copy after the run
    assert y.ctypes.data == address
    np.testing.assert_array_equal(y, sess.run(None, {"x": x})[0])


def test_output_bound_to_the_input_buffer_is_not_written_while_read(tmp_path):
    # y = x @ w with y's buffer being x's: writing in place would overwrite x mid-product.
    sess = rt.InferenceSession(_matmul(tmp_path))
    x = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    expected = sess.run(None, {"x": x})[0]
    buf = np.zeros(40, np.float32)
    xin = buf.reshape(5, 8)
    xin[...] = x
    y = buf[:25].reshape(5, 5)
    io = _run_bound(sess, xin, y)
    assert io.outputs_written_in_place() == []
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_bound_buffer_of_the_wrong_dtype_names_output_expected_and_received(tmp_path):
    sess = rt.InferenceSession(_matmul(tmp_path))
    io = sess.io_binding()
    io.bind_cpu_input("x", np.ones((2, 8), np.float32))
    wrong = np.zeros((2, 5), np.float64)
    io.bind_output("y", "cpu", 0, np.float64, wrong.shape, wrong.ctypes.data)
    with pytest.raises(rt.InvalidArgument, match=r"output 'y'.*tensor\(float\).*tensor\(double\)"):
        sess.run_with_iobinding(io)
    bad_rank = np.zeros((10,), np.float32)
    io.bind_output("y", "cpu", 0, np.float32, bad_rank.shape, bad_rank.ctypes.data)
    with pytest.raises(rt.InvalidArgument, match=r"output 'y'.*shape.*\[10\]"):
        sess.run_with_iobinding(io)


def test_bound_ortvalue_from_numpy_receives_the_output(tmp_path):
    sess = rt.InferenceSession(_matmul(tmp_path))
    x = np.ones((4, 8), np.float32)
    y = np.zeros((4, 5), np.float32)
    io = sess.io_binding()
    io.bind_cpu_input("x", x)
    io.bind_ortvalue_output("y", rt.OrtValue.ortvalue_from_numpy(y))
    sess.run_with_iobinding(io)
    assert io.outputs_written_in_place() == ["y"]
    np.testing.assert_array_equal(y, sess.run(None, {"x": x})[0])
