"""The ONNX-Runtime-compatible session surface: metadata, providers, options, run."""

import threading

import numpy as np
import pytest

import pyflame_rt as rt


def test_metadata_matches_onnxruntime_shape(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("x", ["batch", 4], "tensor(float)")
    assert (out.name, out.type) == ("y", "tensor(float)")
    assert inp.dtype == "tensor(float)"  # the seed API's spelling


def test_run_returns_numpy_outputs(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    x = np.array([[0.5, 0.5, -4.0, 5.0], [-2.0, 3.0, 0.0, 0.0]], np.float32)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x + np.array([1, -2, 3, -4], np.float32), 0))
    assert y.dtype == np.float32 and y.shape == (2, 4)


def test_output_selection_and_order(two_output_model):
    sess = rt.InferenceSession(two_output_model)
    a = np.array([1, 2, 3], np.int64)
    b = np.array([4, 5, 6], np.int64)
    prod, total = sess.run(["prod", "sum"], {"a": a, "b": b})
    np.testing.assert_array_equal(prod, a * b)
    np.testing.assert_array_equal(total, a + b)


def test_available_providers_are_what_this_build_creates():
    available = rt.get_available_providers()
    assert available[-1:] == ["CPUExecutionProvider"] or "CPUExecutionProvider" in available
    assert "CUDAExecutionProvider" not in available
    assert "ReferenceExecutionProvider" not in available  # internal oracle, not a provider


def test_providers_unknown_ones_warn_and_are_skipped(add_relu_model):
    sess = rt.InferenceSession(add_relu_model, providers=["CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    # As ONNX Runtime: a provider this build lacks is skipped with a warning, never an error,
    # and the CPU stays as the last resort.
    with pytest.warns(RuntimeWarning, match="'CUDAExecutionProvider' is not available"):
        sess = rt.InferenceSession(add_relu_model, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.maximum(x + [1, -2, 3, -4], 0))
    with pytest.warns(RuntimeWarning, match="TensorrtExecutionProvider"):
        sess = rt.InferenceSession(add_relu_model, providers=["TensorrtExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_devices_used() == ["cpu"]


def test_provider_tuples_and_options_are_kept(add_relu_model):
    sess = rt.InferenceSession(add_relu_model, providers=[("CPUExecutionProvider", {})])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {}}
    # ONNX Runtime's CPU options are accepted and reported as ignored, not refused.
    with pytest.warns(RuntimeWarning, match="'arena_extend_strategy' is ignored"):
        sess = rt.InferenceSession(add_relu_model, providers=["CPUExecutionProvider"],
                                   provider_options=[{"arena_extend_strategy": "kSameAsRequested"}])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {"arena_extend_strategy": "kSameAsRequested"}}
    with pytest.raises(rt.InvalidArgument, match="same length"):
        rt.InferenceSession(add_relu_model, providers=["CPUExecutionProvider"], provider_options=[{}, {}])


def test_node_placement_and_set_providers(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    placement = sess.get_node_placement()
    assert placement and all(p["device"] == "cpu" for p in placement)
    assert {p["kernel"] for p in placement} <= {"native", "reference"}
    with pytest.warns(RuntimeWarning, match="not available"):
        sess.set_providers(["NoSuchExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    x = np.ones((1, 4), np.float32)
    assert sess.run(None, {"x": x})[0].shape == (1, 4)
    report = sess.device_report()
    assert report["devices"] == ["cpu"] and report["partitions"][0]["device"] == "cpu"


def test_session_from_bytes_and_from_onnx(add_relu_model):
    with open(add_relu_model, "rb") as f:
        data = f.read()
    x = np.ones((1, 4), np.float32)
    a = rt.InferenceSession(data).run(None, {"x": x})[0]
    b = rt.InferenceSession.from_onnx(add_relu_model, optimization_level=rt.OptLevel.ALL).run(None, {"x": x})[0]
    np.testing.assert_array_equal(a, b)


def test_session_options_seed_and_ort_names():
    o = rt.SessionOptions(device="cpu", num_threads=2, enable_profiling=False, memory_limit_mb=4096,
                          execution_mode="sequential", memory_pool="arena", enable_memory_reuse=True)
    assert o.num_threads == 2 and o.intra_op_num_threads == 2
    o.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert o.optimization_level == rt.OptLevel.ALL
    o.execution_mode = rt.ExecutionMode.ORT_PARALLEL
    assert o.execution_mode == "parallel"
    o.inter_op_num_threads = 1  # accepted for ONNX Runtime code
    with pytest.raises(rt.InvalidArgument, match="unknown field 'no_such_option'"):
        o.no_such_option = 1


def test_bad_option_values_name_field(add_relu_model):
    with pytest.raises(rt.InvalidArgument, match=r"SessionOptions.device.*'gpu'"):
        rt.InferenceSession(add_relu_model, rt.SessionOptions(device="gpu"))
    with pytest.raises(rt.InvalidArgument, match="num_threads"):
        rt.SessionOptions(num_threads="four")
    with pytest.raises(rt.InvalidArgument, match="optimization_level"):
        rt.SessionOptions(optimization_level=7)


def test_run_from_many_threads(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(50):
            x = rng.standard_normal((3, 4)).astype(np.float32)
            (y,) = sess.run(None, {"x": x})
            if not np.array_equal(y, np.maximum(x + np.array([1, -2, 3, -4], np.float32), 0)):
                errors.append(seed)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_gil_is_released_while_a_run_computes(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    from conftest import make_model
    model = make_model([helper.make_node("MatMul", ["a", "a"], ["b"])],
                       [helper.make_tensor_value_info("a", TensorProto.FLOAT, [768, 768])],
                       [helper.make_tensor_value_info("b", TensorProto.FLOAT, [768, 768])])
    path = tmp_path / "matmul.onnx"
    onnx.save(model, str(path))
    # One intra-op thread leaves the second core to this thread: with both cores computing the
    # run, the scheduler may not give this thread a slice before the run ends (seen once in a
    # full suite on 2 cores, ticks == 0), which says nothing about the GIL.
    sess = rt.InferenceSession(str(path), rt.SessionOptions(intra_op_num_threads=1))
    a = np.ones((768, 768), np.float32)
    done = threading.Event()
    ticks = 0

    def run():
        sess.run(None, {"a": a})
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    while not done.is_set():  # pure-Python work: only progresses if the run dropped the GIL
        ticks += 1
    worker.join()
    assert ticks > 10000


def test_optimized_graph_can_be_printed_saved_and_reloaded(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from conftest import make_model
    # The Add of two constants folds away at BASIC and above.
    model = make_model(
        [helper.make_node("Add", ["c1", "c2"], ["c"]), helper.make_node("Mul", ["x", "c"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array([1, 2], np.float32), "c1"),
         numpy_helper.from_array(np.array([3, 4], np.float32), "c2")])
    path = tmp_path / "fold.onnx"
    onnx.save(model, str(path))
    saved = tmp_path / "fold.optimized.pfm"
    sess = rt.InferenceSession(str(path), rt.SessionOptions(optimized_model_path=str(saved)))
    assert "Add" not in sess.graph_text() and "init %c = float32[2]{4,6}" in sess.graph_text()
    unopt = rt.InferenceSession(str(path), rt.SessionOptions(optimization_level=rt.OptLevel.NONE))
    assert "Add(%c1, %c2)" in unopt.graph_text()
    x = np.array([0.5, -1.0], np.float32)
    expected = x * np.array([4, 6], np.float32)
    np.testing.assert_array_equal(rt.InferenceSession(str(saved)).run(None, {"x": x})[0], expected)
    np.testing.assert_array_equal(unopt.run(None, {"x": x})[0], expected)
    with pytest.raises(rt.InvalidArgument, match="unknown pass 'fusion_of_doom'"):
        rt.InferenceSession(str(path), rt.SessionOptions(disabled_passes=["fusion_of_doom"]))


def test_profiling_per_node_and_chrome_trace(tmp_path):
    import json
    import os
    cnn = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "models", "tiny_cnn.onnx")
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32)).astype(np.float32)
    sess = rt.InferenceSession(cnn)
    profile = sess.run_with_profiling({"image": x})
    np.testing.assert_allclose(profile.outputs[0], sess.run(None, {"image": x})[0], rtol=1e-6)
    types = [op.op_type for op in profile.operations]
    assert "FusedConv" in types and "Softmax" in types  # conv + BN + ReLU fused at OptLevel.ALL
    assert all(op.duration_us >= 0 for op in profile.operations)
    assert abs(sum(op.percentage for op in profile.operations) - 100.0) < 1e-6
    opts = rt.SessionOptions(enable_profiling=True, profile_file_prefix=str(tmp_path / "prof"))
    traced = rt.InferenceSession(cnn, opts)
    for _ in range(3):
        traced.run(None, {"image": x})
    path = traced.end_profiling()
    assert path.startswith(str(tmp_path / "prof_")) and path.endswith(".json")
    with open(path) as f:
        events = json.load(f)  # ONNX Runtime's format: a list of events
    nodes = [e for e in events if e["cat"] == "Node"]
    assert len(nodes) == 3 * len(profile.operations)
    assert {e["ph"] for e in events} == {"X"} and len([e for e in events if e["name"] == "model_run"]) == 3
    assert sorted({e["args"]["op_name"] for e in nodes}) == sorted(set(types))
    assert rt.InferenceSession(cnn).end_profiling() == ""


def test_fallback_nodes_are_reported(add_relu_model):
    sess = rt.InferenceSession(add_relu_model)
    # Add of [batch,4] + [4] on plain inputs and Relu both have native kernels.
    assert sess.get_fallback_nodes() == []
    import onnx
    from onnx import TensorProto, helper
    from conftest import make_model
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"], name="hardmax_node")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    assert rt.InferenceSession(model.SerializeToString()).get_fallback_nodes() == ["Hardmax 'hardmax_node': no native kernel for Hardmax"]


def test_memory_limit_is_checked_at_creation():
    import os
    cnn = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "models", "tiny_cnn.onnx")
    # tiny_cnn has ~22 KB of weights and a symbolic batch dim (activations unknown until a
    # run), so a 1 MB limit is met at creation.
    rt.InferenceSession(cnn, rt.SessionOptions(memory_limit_mb=1))


def test_memory_limit_too_small_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from conftest import make_model
    w = numpy_helper.from_array(np.ones((1024, 1024), np.float32), "w")  # 4 MB of weights
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])], [w])
    path = tmp_path / "big.onnx"
    onnx.save(model, str(path))
    with pytest.raises(rt.ResourceExhausted, match=r"needs at least 5 MB.*memory_limit_mb is 2"):
        rt.InferenceSession(str(path), rt.SessionOptions(memory_limit_mb=2))
    rt.InferenceSession(str(path), rt.SessionOptions(memory_limit_mb=8)).run(None, {"x": np.ones((1, 1024), np.float32)})


def test_compile_cache_dir_lets_a_second_session_skip_the_passes(tmp_path):
    import os
    cnn = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "examples", "models", "tiny_cnn.onnx")
    opts = rt.SessionOptions(compile_cache_dir=str(tmp_path / "cache"))
    first = rt.InferenceSession(cnn, opts)
    second = rt.InferenceSession(cnn, opts)
    assert (first.compiled_from_cache, second.compiled_from_cache) == (False, True)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(first.run(None, {"image": x})[0], second.run(None, {"image": x})[0])
    assert len(list((tmp_path / "cache").glob("*.plan"))) == 1
