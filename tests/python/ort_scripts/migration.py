"""A typical ONNX Runtime script. tests/python/test_ort_migration.py runs it with only the
import line changed; every check below holds under ONNX Runtime too.

Usage: python3 migration.py WORKDIR
"""
import json
import os
import sys
import threading

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxruntime as ort

Fail = ort.capi.onnxruntime_pybind11_state.Fail
InvalidArgument = ort.capi.onnxruntime_pybind11_state.InvalidArgument

workdir = sys.argv[1]


def save(model, name):
    path = os.path.join(workdir, name)
    onnx.save(model, path)
    return path


def model_of(nodes, inputs, outputs, initializers=(), ir_version=8, opset=13):
    graph = helper.make_graph(nodes, "main_graph", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


# 1. A model with metadata: y = Relu(x + b), x: float[batch, 4] -----------------------------------
bias = np.array([1.0, -2.0, 3.0, -4.0], np.float32)
model = model_of([helper.make_node("Add", ["x", "b"], ["s"], name="add"),
                  helper.make_node("Relu", ["s"], ["y"], name="relu")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                 [numpy_helper.from_array(bias, "b")])
model.producer_name = "migration-test"
model.doc_string = "adds a bias, then relu"
model.domain = "org.example"
model.model_version = 7
helper.set_model_props(model, {"author": "tests", "license": "MIT"})
model_path = save(model, "add_relu.onnx")

# 2. Process-wide settings ---------------------------------------------------------------------
ort.set_default_logger_severity(3)
ort.set_seed(42)
assert isinstance(ort.get_version_string(), str) and ort.get_version_string()
assert isinstance(ort.get_build_info(), str)
assert ort.get_device() == "CPU"
assert "CPUExecutionProvider" in ort.get_available_providers()

# 3. Session options, read back as ONNX Runtime's enums --------------------------------------------
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
so.intra_op_num_threads = 1
assert so.intra_op_num_threads == 1
so.log_severity_level = 3
so.logid = "migration"
so.enable_profiling = True
so.profile_file_prefix = os.path.join(workdir, "ort_profile")
so.optimized_model_filepath = os.path.join(workdir, "add_relu.opt.onnx")
so.add_free_dimension_override_by_name("batch", 2)
so.add_session_config_entry("session.save_model_format", "ONNX")
assert so.get_session_config_entry("session.save_model_format") == "ONNX"

sess = ort.InferenceSession(model_path, sess_options=so, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
assert sess.get_providers() == ["CPUExecutionProvider"]
inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
assert (inp.name, inp.type, inp.shape) == ("x", "tensor(float)", [2, 4]), (inp.name, inp.type, inp.shape)
assert out.name == "y"

# 4. The optimised model is ONNX -------------------------------------------------------------------
optimized = onnx.load(so.optimized_model_filepath)
assert [i.name for i in optimized.graph.input] == ["x"]

# 5. Model metadata ----------------------------------------------------------------------------------
meta = sess.get_modelmeta()
assert meta.producer_name == "migration-test"
assert meta.graph_name == "main_graph"
assert meta.description == "adds a bias, then relu"
assert meta.domain == "org.example"
assert meta.version == 7
assert meta.custom_metadata_map == {"author": "tests", "license": "MIT"}

# 6. Plain runs; a bad output name ------------------------------------------------------------------
x = np.array([[0.5, 0.5, -4.0, 5.0], [-2.0, 3.0, 0.0, 0.0]], np.float32)
expected = np.maximum(x + bias, 0)
(y,) = sess.run(None, {"x": x})
np.testing.assert_array_equal(y, expected)
(y,) = sess.run(["y"], {"x": x})
np.testing.assert_array_equal(y, expected)
try:
    sess.run(["no_such_output"], {"x": x})
    raise AssertionError("an unknown output name must fail")
except InvalidArgument:
    pass

# 7. OrtValue ---------------------------------------------------------------------------------------
xv = ort.OrtValue.ortvalue_from_numpy(x)
assert xv.shape() == [2, 4]
assert xv.data_type() == "tensor(float)"
assert xv.device_name() == "cpu"
assert xv.data_ptr() == x.ctypes.data  # shares the array's memory
np.testing.assert_array_equal(xv.numpy(), x)
(yv,) = sess.run_with_ort_values(["y"], {"x": xv})
np.testing.assert_array_equal(yv.numpy(), expected)
empty = ort.OrtValue.ortvalue_from_shape_and_type([2, 4], np.float32, "cpu", 0)
assert empty.shape() == [2, 4] and empty.data_type() == "tensor(float)"
empty.update_inplace(x)
np.testing.assert_array_equal(empty.numpy(), x)

# 8. IOBinding: the output is written into the caller's buffer --------------------------------------
io = sess.io_binding()
io.bind_cpu_input("x", x)
y_buffer = np.zeros((2, 4), np.float32)
io.bind_output("y", "cpu", 0, np.float32, list(y_buffer.shape), y_buffer.ctypes.data)
sess.run_with_iobinding(io)
np.testing.assert_array_equal(y_buffer, expected)
assert io.get_outputs()[0].data_ptr() == y_buffer.ctypes.data
np.testing.assert_array_equal(io.copy_outputs_to_cpu()[0], expected)
io2 = sess.io_binding()
io2.bind_ortvalue_input("x", xv)
io2.bind_output("y")
sess.run_with_iobinding(io2)
np.testing.assert_array_equal(io2.copy_outputs_to_cpu()[0], expected)

# 9. run_async: the callback gets (results, user_data, err) ------------------------------------------
done = threading.Event()
answers = {}


def callback(results, user_data, err):
    answers["results"], answers["user_data"], answers["err"] = results, user_data, err
    answers["thread"] = threading.get_ident()
    done.set()


sess.run_async(["y"], {"x": x}, callback, "my-data")
assert done.wait(60), "run_async never called back"
assert answers["err"] == "" and answers["user_data"] == "my-data"
np.testing.assert_array_equal(answers["results"][0], expected)
assert answers["thread"] != threading.get_ident()

# 10. RunOptions: tags and terminate -----------------------------------------------------------------
ro = ort.RunOptions()
ro.logid = "request-1"
ro.log_severity_level = 3
ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
assert ro.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
np.testing.assert_array_equal(sess.run(None, {"x": x}, ro)[0], expected)

# A loop that would run for a very long time: terminate stops it between iterations.
body = helper.make_graph(
    [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
    "body",
    [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
     helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
     helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
    [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
     helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])],
    initializer=[numpy_helper.from_array(np.ones(1, np.float32), "one")])
loop = model_of([helper.make_node("Loop", ["trips", "cond", "acc0"], ["acc"], body=body)],
                [helper.make_tensor_value_info("trips", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("acc0", TensorProto.FLOAT, [1])],
                [helper.make_tensor_value_info("acc", TensorProto.FLOAT, [1])])
loop_sess = ort.InferenceSession(save(loop, "loop.onnx"), providers=["CPUExecutionProvider"])
feed = {"trips": np.array(10, np.int64), "cond": np.array(True), "acc0": np.zeros(1, np.float32)}
assert loop_sess.run(None, feed)[0][0] == 10.0
feed["trips"] = np.array(1 << 40, np.int64)
stopper = ort.RunOptions()
outcome = {}


def long_run():
    try:
        loop_sess.run(None, feed, stopper)
        outcome["result"] = "finished"
    except Fail as e:
        outcome["result"] = "terminated: " + str(e)


worker = threading.Thread(target=long_run)
worker.start()
worker.join(0.3)
stopper.terminate = True
worker.join(60)
assert not worker.is_alive(), "terminate did not stop the run"
assert outcome["result"].startswith("terminated"), outcome

# 11. Overridable initializers of an IR 3 model ------------------------------------------------------
old = model_of([helper.make_node("Mul", ["x", "w"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                helper.make_tensor_value_info("w", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
               [numpy_helper.from_array(np.array([2.0, 3.0], np.float32), "w")], ir_version=3, opset=8)
old_sess = ort.InferenceSession(save(old, "ir3.onnx"), providers=["CPUExecutionProvider"])
assert [(i.name, i.type, i.shape) for i in old_sess.get_overridable_initializers()] == [("w", "tensor(float)", [2])]
np.testing.assert_array_equal(old_sess.run(None, {"x": np.ones(2, np.float32)})[0], [2.0, 3.0])
np.testing.assert_array_equal(old_sess.run(None, {"x": np.ones(2, np.float32), "w": np.full(2, 5, np.float32)})[0],
                              [5.0, 5.0])

# 12. Sequence outputs come back as lists -----------------------------------------------------------
seq = model_of([helper.make_node("SequenceConstruct", ["a", "b"], ["s"])],
               [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2]),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])],
               [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)])
seq_sess = ort.InferenceSession(save(seq, "seq.onnx"), providers=["CPUExecutionProvider"])
(items,) = seq_sess.run(None, {"a": np.ones(2, np.float32), "b": np.zeros(2, np.float32)})
assert isinstance(items, list) and len(items) == 2
np.testing.assert_array_equal(items[0], [1.0, 1.0])

# 13. Profiling: ORT's trace format, a new file per end_profiling() ------------------------------------
assert sess.get_profiling_start_time_ns() > 0
first = sess.end_profiling()
sess.run(None, {"x": x})
second = sess.end_profiling()
assert first != second and os.path.exists(first) and os.path.exists(second)
with open(first) as f:
    events = json.load(f)
assert isinstance(events, list)
session_events = {e["name"] for e in events if e["cat"] == "Session"}
assert "session_initialization" in session_events and "model_loading_uri" in session_events, session_events
nodes = [e for e in events if e["cat"] == "Node"]
assert nodes and all(isinstance(e["args"]["op_name"], str) and e["args"]["op_name"] for e in nodes), nodes
assert all(e["args"]["provider"] == "CPUExecutionProvider" for e in nodes)
assert all(isinstance(e["ts"], int) and isinstance(e["dur"], int) for e in events)

print("migration script: all checks passed")
