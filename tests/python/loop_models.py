"""One model builder for the tests of runs that would not end on their own (deadlines,
terminate, a server's shutdown): a Loop whose trip count is a feed."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import make_model


def counting_loop_model(path):
    """v = v0; repeat `trips` times: v = v + 1. Feeds trips (int64 scalar), cond (bool scalar),
    v0 (float[1]); trips = 2^40 runs for days unless the run is stopped between iterations
    (endless_feeds). Returns the path as a string."""
    one = numpy_helper.from_array(np.array([1.0], np.float32), "one")
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
        [one])
    model = make_model(
        [helper.make_node("Loop", ["trips", "cond", "v0"], ["v"], name="loop", body=body)],
        [helper.make_tensor_value_info("trips", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("v", TensorProto.FLOAT, [1])])
    onnx.save(model, str(path))
    return str(path)


def loop_feeds(trips=1 << 40):
    """Feeds of counting_loop_model: `trips` iterations (the default never ends in practice)."""
    return {"trips": np.array(trips, np.int64), "cond": np.array(True), "v0": np.zeros(1, np.float32)}
