"""ONNX type constraints are enforced at import (issue 14, as ONNX Runtime does when it loads a
model): a default-domain node whose input type its op's schema does not allow at the model's
opset, or whose inputs bound to one type parameter disagree, is refused with rt.InvalidGraph
naming the node, the input, the allowed types and the received type, instead of reaching a
kernel written for other types."""

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt
from conftest import make_model


def _one_node(op, in_types, out_type, opset, **attrs):
    names = [f"x{i}" for i in range(len(in_types))]
    return make_model([helper.make_node(op, names, ["y"], name="bad", **attrs)],
                      [helper.make_tensor_value_info(n, t, [2, 2]) for n, t in zip(names, in_types)],
                      [helper.make_tensor_value_info("y", out_type, None)], opset=opset)


def _refusal(tmp_path, model, name="bad.onnx"):
    """The InvalidGraph message of loading `model` from a file."""
    path = str(tmp_path / name)
    onnx.save(model, path)
    with pytest.raises(rt.InvalidGraph) as e:
        rt.InferenceSession(path)
    return str(e.value)


@pytest.mark.parametrize("op, in_types, opset, received, allowed", [
    ("Relu", [TensorProto.INT32], 13, "tensor(int32)", "tensor(float)"),
    ("MatMul", [TensorProto.BOOL, TensorProto.BOOL], 13, "tensor(bool)", "tensor(float)"),
    ("Softmax", [TensorProto.INT64], 13, "tensor(int64)", "tensor(double)"),
    ("Sqrt", [TensorProto.UINT8], 17, "tensor(uint8)", "tensor(float16)"),
])
def test_an_input_type_the_schema_does_not_allow_is_invalid_graph(tmp_path, op, in_types, opset, received, allowed):
    msg = _refusal(tmp_path, _one_node(op, in_types, in_types[0], opset))
    path = str(tmp_path / "bad.onnx")
    assert f"node 'bad' ({op}, opset {opset}): input 0 'x0'" in msg, msg
    assert f"has type {received}" in msg, msg
    assert "allows for its type parameter T only" in msg and allowed in msg, msg
    # The same from bytes.
    with pytest.raises(rt.InvalidGraph, match=r"node 'bad'"):
        rt.InferenceSession(open(path, "rb").read())


def test_inputs_bound_to_one_type_parameter_must_agree(tmp_path):
    msg = _refusal(tmp_path, _one_node("Add", [TensorProto.FLOAT, TensorProto.INT32], TensorProto.FLOAT, 13))
    assert "node 'bad' (Add, opset 13): type parameter T is bound to tensor(float) by input 0 'x0' and to " \
           "tensor(int32) by input 1 'x1'" in msg, msg


def test_a_fixed_input_type_is_checked_too(tmp_path):
    # Reshape's shape must be int64 (a type, not a parameter).
    model = make_model([helper.make_node("Reshape", ["x", "s"], ["y"], name="bad")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                       [numpy_helper.from_array(np.array([4], np.int32), "s")])
    msg = _refusal(tmp_path, model)
    assert re.search(r"input 1 's' \(shape\) has type tensor\(int32\); Reshape allows only tensor\(int64\)", msg), msg


def test_a_node_inside_a_subgraph_is_checked_against_the_outer_scope(tmp_path):
    then_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="inner_relu")], "then", [],
                                    [helper.make_tensor_value_info("r", TensorProto.INT32, [2, 2])])
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                                    [helper.make_tensor_value_info("e", TensorProto.INT32, [2, 2])])
    model = make_model([helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch)],
                       [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                        helper.make_tensor_value_info("x", TensorProto.INT32, [2, 2])],
                       [helper.make_tensor_value_info("y", TensorProto.INT32, [2, 2])], opset=13)
    msg = _refusal(tmp_path, model)
    assert re.search(r"node 'inner_relu' \(Relu, opset 13\): input 0 'x' \(X\) has type tensor\(int32\)", msg), msg


def test_types_the_opset_allows_still_load_and_run(tmp_path):
    # Relu on int32 is allowed from opset 14; Add of two int32; an optional input left out.
    path = str(tmp_path / "relu14.onnx")
    onnx.save(_one_node("Relu", [TensorProto.INT32], TensorProto.INT32, 14), path)
    x = np.array([[-3, 2], [0, -1]], np.int32)
    assert rt.InferenceSession(path).run(None, {"x0": x})[0].tolist() == [[0, 2], [0, 0]]
    path = str(tmp_path / "add.onnx")
    onnx.save(_one_node("Add", [TensorProto.INT32, TensorProto.INT32], TensorProto.INT32, 13), path)
    assert rt.InferenceSession(path).run(None, {"x0": x, "x1": x})[0].tolist() == (2 * x).tolist()
    model = make_model([helper.make_node("Clip", ["x", "", "hi"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
                       [numpy_helper.from_array(np.array(1.0, np.float32), "hi")])
    path = str(tmp_path / "clip.onnx")
    onnx.save(model, path)
    out = rt.InferenceSession(path).run(None, {"x": np.array([-2, 0.5, 3], np.float32)})[0]
    assert out.tolist() == [-2.0, 0.5, 1.0]
