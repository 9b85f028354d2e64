"""ONNX Runtime compatibility details beyond the migration script: logging, options, errors,
seeds, IOBinding edge cases, run_async errors."""

import json
import threading
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt
from conftest import make_model


def test_log_lines_carry_session_and_run_ids(add_relu_model, capfd):
    opts = rt.SessionOptions(log_id="sess-log", log_severity_level=0)
    sess = rt.InferenceSession(add_relu_model, opts)
    ro = rt.RunOptions()
    ro.logid = "req-42"
    ro.log_severity_level = 0
    sess.run(None, {"x": np.ones((1, 4), np.float32)}, ro)
    err = capfd.readouterr().err
    assert "[I:pyflame_rt:sess-log] session ready" in err
    assert "[V:pyflame_rt:sess-log:req-42] run started" in err
    quiet = rt.InferenceSession(add_relu_model)  # default threshold: warnings and up
    quiet.run(None, {"x": np.ones((1, 4), np.float32)})
    assert "pyflame_rt" not in capfd.readouterr().err


def test_default_logger_severity_is_validated_and_applied(add_relu_model, capfd):
    with pytest.raises(rt.InvalidArgument, match="severity"):
        rt.set_default_logger_severity(7)
    try:
        rt.set_default_logger_severity(1)
        rt.InferenceSession(add_relu_model)
        assert "session ready" in capfd.readouterr().err
    finally:
        rt.set_default_logger_severity(2)


def test_ignored_options_warn_on_both_channels(add_relu_model, capfd):
    opts = rt.SessionOptions()
    opts.inter_op_num_threads = 3
    opts.add_session_config_entry("session.made_up", "1")
    with pytest.warns(RuntimeWarning) as record:
        rt.InferenceSession(add_relu_model, opts)
    messages = " | ".join(str(w.message) for w in record)
    assert "inter_op_num_threads=3 is ignored" in messages and "'session.made_up'" in messages
    err = capfd.readouterr().err
    assert "[W:pyflame_rt:session-" in err and "inter_op_num_threads=3 is ignored" in err


def test_fallback_nodes_are_logged_at_creation(capfd):
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"], name="hardmax_node")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    rt.InferenceSession(model.SerializeToString(), rt.SessionOptions(log_id="hm"))
    err = capfd.readouterr().err
    assert "[W:pyflame_rt:hm] 1 node(s) run on the slower reference kernels" in err and "Hardmax 'hardmax_node'" in err


def test_many_fallback_nodes_are_logged_in_one_short_line(capfd):
    # A detection model has a thousand: ten by name, the rest counted by op type.
    nodes = [helper.make_node("Hardmax", [f"v{i}"], [f"v{i + 1}"], name=f"hm{i}") for i in range(13)]
    model = make_model(nodes, [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [4])],
                       [helper.make_tensor_value_info("v13", TensorProto.FLOAT, [4])])
    rt.InferenceSession(model.SerializeToString(), rt.SessionOptions(log_id="many"))
    err = capfd.readouterr().err
    line = next(l for l in err.splitlines() if "[W:pyflame_rt:many] 13 node(s) run on the slower" in l)
    assert "Hardmax 'hm9'" in line and "'hm10'" not in line
    assert "and 3 more: Hardmax x3 (get_fallback_nodes() lists all)" in line


def test_options_read_back_as_ort_enums():
    o = rt.SessionOptions()
    assert o.graph_optimization_level == rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert o.execution_mode == rt.ExecutionMode.ORT_SEQUENTIAL and o.execution_mode == "sequential"
    o.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert o.graph_optimization_level is rt.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert o.optimization_level == rt.OptLevel.BASIC
    o.execution_mode = rt.ExecutionMode.ORT_PARALLEL
    assert o.execution_mode is rt.ExecutionMode.ORT_PARALLEL and o.to_native()["execution_mode"] == "parallel"
    assert o.log_severity_level == 2 and o.logid == ""
    with pytest.raises(rt.InvalidArgument, match="no session config entry 'nope'"):
        o.get_session_config_entry("nope")


def test_error_table_comes_from_native_codes():
    from pyflame_rt import _pyflame_rt, errors
    codes = [c for c in _pyflame_rt.status_code_names() if c != "OK"]
    assert sorted(errors._BY_CODE) == sorted(codes)
    assert errors.exception_for_code("NotImplemented") is rt.NotImplemented
    assert rt.capi.onnxruntime_pybind11_state.NotImplemented is rt.NotImplementedFailure
    assert not hasattr(errors, "NotImplemented")  # the builtin is not shadowed there
    assert rt.__version__ == rt.get_version_string() == _pyflame_rt.__version__


def _random_model():
    return make_model([helper.make_node("RandomNormal", [], ["r"], shape=[8], dtype=TensorProto.FLOAT)], [],
                      [helper.make_tensor_value_info("r", TensorProto.FLOAT, [8])]).SerializeToString()


def test_set_seed_makes_unseeded_random_ops_repeat():
    sess = rt.InferenceSession(_random_model(), rt.SessionOptions(optimization_level=0))
    rt.set_seed(123)
    a = sess.run(None, {})[0]
    b = sess.run(None, {})[0]
    rt.set_seed(123)
    a2 = sess.run(None, {})[0]
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, b)


def test_free_dimension_override_by_denotation(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    x.type.tensor_type.shape.dim[0].denotation = "DATA_BATCH"
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [x],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])
    opts = rt.SessionOptions()
    opts.add_free_dimension_override_by_denotation("DATA_BATCH", 5)
    sess = rt.InferenceSession(model.SerializeToString(), opts)
    assert sess.get_inputs()[0].shape == [5, 4]
    with pytest.raises(rt.InvalidArgument, match="dimension 0 must be 5"):
        sess.run(None, {"x": np.ones((2, 4), np.float32)})


def test_optimized_model_as_onnx_reloads(tmp_path):
    path = tmp_path / "fold.onnx"
    model = make_model(
        [helper.make_node("Add", ["c1", "c2"], ["c"]), helper.make_node("Mul", ["x", "c"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array([1, 2], np.float32), "c1"),
         numpy_helper.from_array(np.array([3, 4], np.float32), "c2")])
    onnx.save(model, str(path))
    out = tmp_path / "fold.opt.onnx"
    rt.InferenceSession(str(path), rt.SessionOptions(optimized_model_path=str(out)))
    saved = onnx.load(str(out))
    assert [n.op_type for n in saved.graph.node] == ["Mul"]  # the Add of constants was folded
    assert saved.producer_name == "pyflame_rt"
    x = np.array([0.5, -1.0], np.float32)
    np.testing.assert_array_equal(rt.InferenceSession(str(out)).run(None, {"x": x})[0], x * [4, 6])


def test_iobinding_rejects_a_buffer_of_the_wrong_shape(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    io = sess.io_binding()
    io.bind_cpu_input("x", np.ones((2, 4), np.float32))
    wrong = np.zeros((3, 4), np.float32)
    io.bind_output("y", "cpu", 0, np.float32, wrong.shape, wrong.ctypes.data)
    with pytest.raises(rt.InvalidArgument, match=r"output 'y'.*float32\[3,4\].*float32\[2,4\]"):
        sess.run_with_iobinding(io)
    with pytest.raises(rt.InvalidArgument, match="cuda"):
        io.bind_output("y", "cuda", 0)


def test_ortvalue_from_numpy_shares_memory_and_update_inplace_checks_size():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = rt.OrtValue.ortvalue_from_numpy(x)
    x[0, 0] = 42.0
    assert v.numpy()[0, 0] == 42.0
    v.update_inplace(np.full((2, 3), 7, np.float32))
    assert x[1, 2] == 7.0
    assert v.element_type() is np.float32
    with pytest.raises(rt.InvalidArgument, match="update_inplace"):
        v.update_inplace(np.zeros(5, np.float32))


def test_run_async_reports_errors_through_the_callback(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    done = threading.Event()
    got = {}

    def callback(results, user_data, err):
        got.update(results=results, user_data=user_data, err=err)
        done.set()

    sess.run_async(None, {"x": np.ones((1, 5), np.float32)}, callback, 17)
    assert done.wait(60)
    assert got["results"] is None and got["user_data"] == 17
    assert got["err"].startswith("InvalidArgument:") and "dimension 1 must be 4" in got["err"]


def test_profiles_are_ort_trace_lists_in_new_files(tmp_path, add_relu_model):
    opts = rt.SessionOptions(enable_profiling=True, profile_file_prefix=str(tmp_path / "p"))
    sess = rt.InferenceSession(add_relu_model, opts)
    for _ in range(2):
        sess.run(None, {"x": np.ones((1, 4), np.float32)})
    first, second = sess.end_profiling(), sess.end_profiling()
    assert first != second
    with open(first) as f:
        events = json.load(f)
    runs = [e for e in events if e["name"] == "model_run"]
    assert len(runs) == 2 and all(e["cat"] == "Session" for e in runs)
    nodes = [e for e in events if e["cat"] == "Node"]
    assert nodes and {e["args"]["provider"] for e in nodes} == {"CPUExecutionProvider"}
    assert all(e["name"].endswith("_kernel_time") and e["args"]["op_name"] for e in nodes)
    with open(second) as f:
        assert [e["name"] for e in json.load(f)][:2] == ["model_loading_uri", "session_initialization"]


def test_cli_prints_creation_warnings(tmp_path):
    import os
    import subprocess
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"], name="hardmax_node")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    onnx.save(model, str(tmp_path / "hardmax.onnx"))
    np.save(tmp_path / "x.npy", np.ones(4, np.float32))
    r = subprocess.run([os.path.join(repo, "build", "bin", "pyflame-rt"), "run", str(tmp_path / "hardmax.onnx"), "--input",
                        f"x={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "[W:pyflame_rt:session-1]" in r.stderr and "Hardmax 'hardmax_node'" in r.stderr


def test_accepted_run_settings_without_effect_warn(add_relu_model, capfd):
    ro = rt.RunOptions()
    with pytest.warns(RuntimeWarning, match="only_execute_path_to_fetches is ignored"):
        ro.only_execute_path_to_fetches = True
    ro.add_run_config_entry("test.entry_nobody_reads", "1")
    sess = rt.InferenceSession(add_relu_model)
    for _ in range(2):
        sess.run(None, {"x": np.ones((1, 4), np.float32)}, ro)
    err = capfd.readouterr().err
    assert err.count("run config entry 'test.entry_nobody_reads' (= '1') is ignored") == 1  # once per process
    with pytest.warns(RuntimeWarning, match="memory_pool 'custom' behaves as 'default'"):
        rt.InferenceSession(add_relu_model, rt.SessionOptions(memory_pool="custom"))


def test_provider_tuples_and_options_are_kept(add_relu_model):
    from pyflame_rt.provider_args import normalize_provider_args
    names, options = normalize_provider_args([("CPUExecutionProvider", {"arena_extend_strategy": 1})])
    assert names == ["CPUExecutionProvider"] and options == [{"arena_extend_strategy": "1"}]
    assert normalize_provider_args(["CPUExecutionProvider", "CPUExecutionProvider"], [{"a": 1}, {"b": 2}]) == (
        ["CPUExecutionProvider"], [{"a": "1"}])
    with pytest.raises(rt.InvalidArgument, match="same length"):
        normalize_provider_args(["CPUExecutionProvider"], [{}, {}])
    with pytest.raises(rt.InvalidArgument, match=r"\(name, dict\) tuple"):
        normalize_provider_args([("CPUExecutionProvider",)])
    sess = rt.InferenceSession(add_relu_model, providers=["CPUExecutionProvider"],
                               provider_options=[{"use_arena": True}])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {"use_arena": "True"}}
    sess = rt.InferenceSession(add_relu_model, providers=[("CPUExecutionProvider", {"x": 3})])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {"x": "3"}}
    sess.set_providers(["CPUExecutionProvider"])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {}}
