"""Shared fixtures: small ONNX models built with python3-onnx's helper API."""

import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

# Every graph pass is checked to leave a valid, sorted graph (read when the module loads).
os.environ.setdefault("PFRT_VERIFY_PASSES", "1")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))


def make_model(nodes, inputs, outputs, initializers=(), opset=13, name="test"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


@pytest.fixture
def add_relu_model(tmp_path):
    """y = Relu(x + b), x: float[batch, 4], b: initializer [4]."""
    b = numpy_helper.from_array(np.array([1.0, -2.0, 3.0, -4.0], np.float32), "b")
    model = make_model(
        [helper.make_node("Add", ["x", "b"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["y"], name="relu")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [b])
    path = tmp_path / "add_relu.onnx"
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture
def two_output_model(tmp_path):
    """sum = a + b, prod = a * b over int64[3]."""
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["prod"])],
        [helper.make_tensor_value_info("a", TensorProto.INT64, [3]),
         helper.make_tensor_value_info("b", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("sum", TensorProto.INT64, [3]),
         helper.make_tensor_value_info("prod", TensorProto.INT64, [3])])
    path = tmp_path / "two_outputs.onnx"
    onnx.save(model, str(path))
    return str(path)
