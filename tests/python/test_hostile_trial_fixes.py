"""What bench/hostile_trial.py found (issue 14), one regression test per class: a default run
deadline for untrusted models (SessionOptions.run_timeout_ms, the CLI's --run-timeout-ms), model
output names that would write outside the CLI's --output-dir, foreign exceptions from option
values. Each failed (a hang, a file written outside, a ValueError) before its fix."""

import os
import subprocess

import numpy as np
import onnx
import pytest
from conftest import REPO, make_model
from onnx import TensorProto, helper, numpy_helper
from loop_models import counting_loop_model as _loop_model
from test_limits import _in_thread

import pyflame_rt as rt

CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")


def _forever(trips=1 << 62):
    return {"trips": np.array(trips, np.int64), "cond": np.array(True), "v0": np.zeros(1, np.float32)}


# SessionOptions.run_timeout_ms ---------------------------------------------------------------

def test_session_run_timeout_stops_every_run_of_the_session(tmp_path):
    session = rt.InferenceSession(_loop_model(tmp_path / "loop.onnx"), rt.SessionOptions(run_timeout_ms=100))
    _, error = _in_thread(lambda: session.run(None, _forever()))
    assert isinstance(error, rt.DeadlineExceeded), repr(error)
    assert "SessionOptions.run_timeout_ms is 100 ms" in str(error)
    assert session.get_limit_counters()["runs_deadline_exceeded"] == 1
    # The batcher, a stream and a pipeline run through the same session: the same deadline.
    with session.create_batcher(max_batch_size=1, batch_timeout_ms=1) as batcher:
        _, error = _in_thread(lambda: batcher.run(None, _forever()))
    assert isinstance(error, rt.PyFlameRTError) and "SessionOptions.run_timeout_ms" in str(error), repr(error)
    # RunOptions.timeout_ms, when set, wins over the session's.
    ro = rt.RunOptions()
    ro.timeout_ms = 50
    _, error = _in_thread(lambda: session.run(None, _forever(), ro))
    assert "RunOptions.timeout_ms is 50 ms" in str(error)
    # Short runs are untouched.
    assert session.run(None, _forever(7))[0].tolist() == [7.0]


def test_run_timeout_must_not_be_negative(tmp_path):
    with pytest.raises(rt.InvalidArgument, match="run_timeout_ms"):
        rt.InferenceSession(_loop_model(tmp_path / "loop.onnx"), rt.SessionOptions(run_timeout_ms=-1))


def test_cli_run_timeout_stops_a_run_that_would_never_end(tmp_path):
    model = _loop_model(tmp_path / "loop.onnx")
    for name, value in _forever().items():
        np.save(tmp_path / f"{name}.npy", value)
    args = [a for n in ("trips", "cond", "v0") for a in ("--input", f"{n}={tmp_path / (n + '.npy')}")]
    r = subprocess.run([CLI, "run", model, *args, "--run-timeout-ms", "200"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert "SessionOptions.run_timeout_ms is 200 ms" in r.stderr


# Output names are file names under --output-dir ----------------------------------------------

@pytest.mark.parametrize("name", ["../escape", "sub/../../escape", "/tmp/pfrt_escape_abs", "..", "a\\b"])
def test_cli_refuses_output_names_that_are_paths(tmp_path, name):
    model = make_model([helper.make_node("Relu", ["x"], [name])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                       [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])])
    (tmp_path / "m").mkdir()
    onnx.save(model, str(tmp_path / "m" / "model.onnx"))
    np.save(tmp_path / "x.npy", np.ones(2, np.float32))
    out = tmp_path / "m" / "out"
    r = subprocess.run([CLI, "run", str(tmp_path / "m" / "model.onnx"), "--input", f"x={tmp_path / 'x.npy'}",
                        "--output-dir", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "plain file name" in r.stderr, r.stderr
    assert not (tmp_path / "m" / "escape.npy").exists() and not (tmp_path / "escape.npy").exists()
    assert not os.path.exists("/tmp/pfrt_escape_abs.npy")
    # Printing the outputs (no --output-dir) writes nothing and still works.
    r = subprocess.run([CLI, "run", str(tmp_path / "m" / "model.onnx"), "--input", f"x={tmp_path / 'x.npy'}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# Option values that are not numbers ---------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda s, x: s.run_batch(None, [{"image": x}], max_batch_size="eight"),
    lambda s, x: s.run_batch(None, [{"image": x}], batch_timeout_ms=None),
    lambda s, x: s.create_batcher(max_batch_size=2**70),
    lambda s, x: s.create_batcher(preferred_batch_sizes="4,8"),
    lambda s, x: s.create_stream(chunk_size="x"),
    lambda s, x: s.create_stream(idle_timeout_ms=None),
])
def test_non_numeric_options_are_invalid_argument(call):
    s = rt.InferenceSession(CNN)
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.raises(rt.InvalidArgument) as e:
        call(s, x)
    assert "expected" in str(e.value)
    assert s.run(None, {"image": x})[0].shape == (1, 10)


# Arrays that cannot be copied, or are in foreign byte order, on every path that takes arrays --

def _huge_view():
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), [2**40, 3, 32, 32], [0] * 4)


def test_a_huge_view_is_an_error_for_ortvalues_and_run_async():
    # Both segfaulted (the copy's allocation failure was not checked on these paths).
    with pytest.raises(rt.ResourceExhausted, match="cannot be allocated"):
        rt.OrtValue.ortvalue_from_numpy(_huge_view())
    s = rt.InferenceSession(CNN)
    with pytest.raises(rt.ResourceExhausted, match="input 'image'"):
        s.run_async(None, {"image": _huge_view()}, lambda *a: None, None)
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert s.run(None, {"image": x})[0].shape == (1, 10)


def test_iobinding_reads_a_big_endian_input_by_value():
    s = rt.InferenceSession(CNN)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    (want,) = s.run(None, {"image": x})
    b = s.io_binding()
    b.bind_cpu_input("image", x.astype(">f4"))
    b.bind_output("probs")
    s.run_with_iobinding(b)
    np.testing.assert_array_equal(b.copy_outputs_to_cpu()[0], want)


def test_bind_cpu_input_of_a_non_array_is_invalid_argument():
    b = rt.InferenceSession(CNN).io_binding()
    with pytest.raises(rt.InvalidArgument, match="bind_cpu_input\\('image'\\): expected a numpy array"):
        b.bind_cpu_input("image", None)


def test_pipeline_capacity_must_be_an_integer():
    with pytest.raises(rt.InvalidArgument, match="capacity"):
        rt.Pipeline().add_stage("m", session=rt.InferenceSession(CNN), capacity=None)


def test_an_empty_output_numpy_cannot_hold_is_resource_exhausted(tmp_path):
    # [0, 2^62, 4] has no elements, but numpy refuses the shape (ValueError before the fix).
    model = make_model([helper.make_node("ConstantOfShape", ["shape"], ["y"])],
                       [helper.make_tensor_value_info("shape", TensorProto.INT64, [3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    s = rt.InferenceSession(str(tmp_path / "m.onnx"))
    with pytest.raises(rt.ResourceExhausted, match="cannot be made a numpy array"):
        s.run(None, {"shape": np.array([0, 2**62, 4], np.int64)})
    assert s.run(None, {"shape": np.array([2, 3, 0], np.int64)})[0].shape == (2, 3, 0)
    # Refused before pybind11 computes the strides (4 * 4 * 2^62 overflowed there: a UBSan
    # report under make sanitize-asan-python); numpy's own refusal came after it.
    with pytest.raises(rt.ResourceExhausted, match=r"its strides \(4 bytes times the trailing dims\)"):
        s.run(None, {"shape": np.array([0, 2**62, 4], np.int64)})
    assert s.run(None, {"shape": np.array([0, 2**40, 4], np.int64)})[0].shape == (0, 2**40, 4)


# Required inputs left empty ("" is only for optional inputs) ---------------------------------

@pytest.mark.parametrize("op,inputs,extra,message", [
    ("MatMul", ["", "w"], {}, "input 0 \\('A'\\) is required"),
    ("MatMul", ["x", ""], {}, "input 1 \\('B'\\) is required"),
    ("MaxPool", [""], {"kernel_shape": [2, 2]}, "input 0 \\('X'\\) is required"),
    ("MatMul", ["x"], {}, "has 1 inputs, MatMul \\(opset 13\\) needs at least 2"),
])
def test_an_empty_required_input_is_invalid_graph(tmp_path, op, inputs, extra, message):
    # Each reached a native kernel that read the absent input: SIGSEGV.
    from onnx import numpy_helper
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    model = make_model([helper.make_node(op, inputs, ["y"], **extra)],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(rt.InvalidGraph, match=message):
        rt.InferenceSession(str(tmp_path / "m.onnx"))


def test_an_empty_optional_input_is_still_accepted(tmp_path):
    from onnx import numpy_helper
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    model = make_model([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [scales])
    onnx.save(model, str(tmp_path / "m.onnx"))
    y = rt.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": np.ones((1, 1, 2, 2), np.float32)})[0]
    assert y.shape == (1, 1, 4, 4)


@pytest.mark.parametrize("port,timeout", [("x", 1000), (70000, 1000), (None, 1000), (1234, "soon"), (1234, 0)])
def test_remote_stage_arguments_are_checked(port, timeout):
    with pytest.raises(rt.InvalidArgument):
        if port is None:
            rt.RemoteStage("127.0.0.1", [1], timeout_ms=timeout)
        else:
            rt.RemoteStage("127.0.0.1", port, timeout_ms=timeout)


def test_a_message_quoting_a_non_utf8_name_keeps_its_text():
    # A tensor named with invalid UTF-8: the InvalidGraph came with an empty message.
    from onnx import numpy_helper
    w = numpy_helper.from_array(np.ones(3, np.float32), "w")
    w.name = "placeholder"
    model = make_model([helper.make_node("Add", ["x", "placeholder"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [w])
    model.graph.initializer[0].ClearField("raw_data")  # stores 0 of 3 elements
    data = model.SerializeToString().replace(b"placeholder", b"bad\xff\xfenamee!")  # same length
    with pytest.raises(rt.InvalidGraph) as e:
        rt.InferenceSession(data)
    assert "bad\\xff\\xfenamee!" in str(e.value) and "needs 3" in str(e.value)


def test_a_node_lacking_a_required_attribute_is_invalid_graph(tmp_path):
    # A Scan without its body crashed inside libonnx's shape inference (SIGSEGV).
    model = make_model([helper.make_node("Scan", ["x"], ["y"], num_scan_inputs=1)],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(rt.InvalidGraph, match="lacks its required attribute 'body'"):
        rt.InferenceSession(str(tmp_path / "m.onnx"))
    # An attribute of the wrong kind: Cast's `to` as a string.
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to="float")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(model, str(tmp_path / "m2.onnx"))
    with pytest.raises(rt.InvalidGraph, match="attribute 'to' is STRING, the op expects INT"):
        rt.InferenceSession(str(tmp_path / "m2.onnx"))


def test_an_empty_operand_of_a_variadic_input_is_invalid_graph(tmp_path):
    # Stop 16 (seed 17, case 2890): an Einsum "ij,jk->ik" given "" as its second operand was made
    # a MatMul by einsum_to_matmul, whose native kernel read the absent input: SIGSEGV. "" marks
    # an omitted optional input only; a variadic input's operands are required.
    m = numpy_helper.from_array(np.ones((4, 2), np.float32), "m")
    for inputs in (["x", ""], ["", "m"]):
        model = make_model([helper.make_node("Einsum", inputs, ["y"], equation="ij,jk->ik")],
                           [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [m], opset=17)
        onnx.save(model, str(tmp_path / "einsum.onnx"))
        with pytest.raises(rt.InvalidGraph, match=r"Einsum.*'Inputs', an operand of a variadic input\) is required, "
                                                  r"but the node leaves it empty"):
            rt.InferenceSession(str(tmp_path / "einsum.onnx"))
    concat = make_model([helper.make_node("Concat", ["x", "", "x"], ["y"], axis=0)],
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], opset=17)
    with pytest.raises(rt.InvalidGraph, match=r"Concat.*input 1 \('inputs', an operand of a variadic input\)"):
        rt.InferenceSession(concat.SerializeToString())


def test_an_implicit_einsum_with_upper_case_labels_loads_and_runs():
    # kernel_run stop 16: libonnx 1.12's Einsum inference counts an implicit output's labels in a
    # table indexed by label - 'a'; "UPPER" wrote before it (heap corruption at session creation).
    model = make_model([helper.make_node("Einsum", ["x"], ["y"], equation="UPPER")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3, 4, 5])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], opset=17)
    x = np.random.default_rng(3).standard_normal((2, 3, 3, 4, 5)).astype(np.float32)
    y = rt.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, np.einsum("UPPER", x), rtol=1e-5, atol=1e-6)  # the trace over P, axes E, R, U


# MaxUnpool's reference kernel read kernel_shape/strides/pads per spatial dim and I per element
# of X without checking their lengths (found reading the kernels after the fuzzer's Conv stride
# finding): a short list or a smaller I was read past its end.

def _max_unpool(kernel, strides, i_shape=(1, 1, 2, 2)):
    node = helper.make_node("MaxUnpool", ["x", "i"], ["y"], kernel_shape=kernel, strides=strides)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 1, 2, 2)),
                                            helper.make_tensor_value_info("i", TensorProto.INT64, i_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]).SerializeToString()


def test_max_unpool_checks_its_attribute_lengths_and_index_shape():
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    i = np.array([0, 3, 8, 15], np.int64).reshape(1, 1, 2, 2)
    y = rt.InferenceSession(_max_unpool([2, 2], [2, 2])).run(None, {"x": x, "i": i})[0]
    np.testing.assert_array_equal(y.ravel(), [0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 3])
    for kernel, strides in (([2], [2, 2]), ([2, 2], [2])):
        with pytest.raises(rt.InvalidArgument, match=r"must match the input's 2 spatial dims"):
            rt.InferenceSession(_max_unpool(kernel, strides)).run(None, {"x": x, "i": i})
    with pytest.raises(rt.InvalidArgument, match=r"I must have its shape, got I \[1,1,1,2\]"):
        rt.InferenceSession(_max_unpool([2, 2], [2, 2], (1, 1, 1, 2))).run(None, {"x": x, "i": i[:, :, :1]})


# Convolutions with no output channels ----------------------------------------------------------

@pytest.mark.parametrize("around", ["relu", "bn_after", "bn_before"])
def test_a_convolution_with_no_output_channels_loads_and_runs(around):
    """W of shape [0, C, kH, kW] (a valid, empty convolution) divided by its output channel count
    in three graph passes (zero-channel pruning, Conv+BN and BN+Conv folding): SIGFPE at session
    creation, the process gone. It now loads, and runs to an empty output as ONNX says."""
    inits = [onnx.numpy_helper.from_array(np.zeros((0, 3, 1, 1), np.float32), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"])]
    if around == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    else:
        stats = {"scale": 1.0, "bias": 0.0, "mean": 0.0, "var": 1.0}
        channels = 0 if around == "bn_after" else 3
        for name, value in stats.items():
            inits.append(onnx.numpy_helper.from_array(np.full(channels, value, np.float32), name))
        bn = helper.make_node("BatchNormalization", [("c" if around == "bn_after" else "x"), "scale", "bias", "mean", "var"],
                              ["y" if around == "bn_after" else "n"])
        nodes = [bn, helper.make_node("Conv", ["n", "w"], ["y"])] if around == "bn_before" else nodes + [bn]
    graph = helper.make_graph(nodes, "empty_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = rt.InferenceSession(model.SerializeToString())
    (y,) = session.run(None, {"x": np.ones((1, 3, 4, 4), np.float32)})
    assert y.shape == (1, 0, 4, 4)
