"""pyflame_rt.compress: channel and magnitude pruning (checked against ONNX Runtime on the same
pruned model, and for the channels the compiler removed), and distillation through torch."""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyflame_rt as rt
from pyflame_rt import compress

import ort_reference  # noqa: E402 - tests/tools is on sys.path (conftest.py)


def _conv_bn_act(name, x, cin, cout, k, group, act, rng, nodes, inits):
    w = rng.standard_normal((cout, cin // group, k, k)).astype(np.float32) * 0.3
    inits.append(numpy_helper.from_array(w, f"{name}_w"))
    inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32) * 0.1, f"{name}_b"))
    nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_c"], name=name,
                                  group=group, pads=[k // 2] * 4))
    for p, v in (("scale", rng.uniform(0.5, 1.5, cout)), ("shift", rng.standard_normal(cout) * 0.1),
                 ("mean", rng.standard_normal(cout) * 0.1), ("var", rng.uniform(0.5, 1.5, cout))):
        inits.append(numpy_helper.from_array(v.astype(np.float32), f"{name}_{p}"))
    nodes.append(helper.make_node("BatchNormalization", [f"{name}_c"] + [f"{name}_{p}" for p in
                                  ("scale", "shift", "mean", "var")], [f"{name}_n"], name=f"{name}_bn"))
    if act == "Relu":
        nodes.append(helper.make_node("Relu", [f"{name}_n"], [f"{name}_y"], name=f"{name}_act"))
    else:  # ReLU6 as opset-13 Clip with constant bounds
        inits.append(numpy_helper.from_array(np.array(0, np.float32), f"{name}_lo"))
        inits.append(numpy_helper.from_array(np.array(6, np.float32), f"{name}_hi"))
        nodes.append(helper.make_node("Clip", [f"{name}_n", f"{name}_lo", f"{name}_hi"], [f"{name}_y"],
                                      name=f"{name}_act"))
    return f"{name}_y"


def small_cnn(path):
    """conv3x3 -> expand 1x1 -> depthwise 3x3 -> project 1x1 (+ residual) -> pool -> Gemm: a
    MobileNetV2-style block after a plain stem."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    y = _conv_bn_act("stem", "x", 3, 16, 3, 1, "Relu", rng, nodes, inits)
    e = _conv_bn_act("expand", y, 16, 32, 1, 1, "Clip", rng, nodes, inits)
    d = _conv_bn_act("dw", e, 32, 32, 3, 32, "Clip", rng, nodes, inits)
    p = _conv_bn_act("project", d, 32, 16, 1, 1, "Relu", rng, nodes, inits)
    nodes.append(helper.make_node("Add", [p, y], ["res"], name="residual"))
    nodes.append(helper.make_node("GlobalAveragePool", ["res"], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    inits.append(numpy_helper.from_array(rng.standard_normal((10, 16)).astype(np.float32), "fc_w"))
    inits.append(numpy_helper.from_array(np.zeros(10, np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"))
    g = helper.make_graph(nodes, "small_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def _run(model, feed, **kw):
    return rt.InferenceSession(model, **kw).run(None, feed)[0]


def test_channel_pruning_matches_ort_and_shrinks_the_convolutions(tmp_path):
    path = small_cnn(str(tmp_path / "cnn.onnx"))
    result = compress.prune(path, sparsity=0.5, structured=True)
    layers = {layer["node"]: layer for layer in result.layers}
    # The stem feeds the residual Add: not exactly removable, so left alone. The expand
    # convolution's channels run through the depthwise one into the projection.
    assert "stem" not in layers and "project" not in layers
    assert layers["expand"]["pruned"] == 16 and layers["expand"]["carried_through"] == ["dw"]
    pruned = result.save(str(tmp_path / "pruned.onnx"))
    assert "expand (Conv): 16 of 32 channels" in result.report()

    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ours = _run(pruned, {"x": x})
    ref = ort_reference.run_ort(pruned, {"x": x})["logits"]
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    assert not np.allclose(ours, _run(path, {"x": x}), atol=1e-3)  # pruning changed the model

    # The optimised graph holds the smaller convolutions.
    so = rt.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    rt.InferenceSession(pruned, sess_options=so)
    opt = onnx.load(so.optimized_model_filepath)
    inits = {t.name: t for t in opt.graph.initializer}
    shapes = {n.name: list(inits[n.input[1]].dims) for n in opt.graph.node if n.op_type in ("Conv", "FusedConv")}
    assert shapes["expand"][0] == 16
    assert shapes["dw"][0] == 16
    assert shapes["project"][1] == 16


def test_channel_pruning_keeps_ort_equal_on_a_chain(tmp_path):
    # Without the residual, the stem can be pruned too (its readers are convolutions).
    rng = np.random.default_rng(3)
    nodes, inits = [], []
    y = _conv_bn_act("a", "x", 3, 12, 3, 1, "Relu", rng, nodes, inits)
    y = _conv_bn_act("b", y, 12, 12, 3, 1, "Relu", rng, nodes, inits)
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 10, 10])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, [2, 12, 10, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    result = compress.prune(m, sparsity=0.25, structured=True)
    assert [(layer["node"], layer["pruned"]) for layer in result.layers] == [("a", 3)]
    path = result.save(str(tmp_path / "chain.onnx"))
    x = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(_run(path, {"x": x}), ort_reference.run_ort(path, {"x": x})[y], rtol=1e-4, atol=1e-4)


def test_magnitude_pruning_zeroes_the_smallest_weights(tmp_path):
    path = small_cnn(str(tmp_path / "cnn.onnx"))
    result = compress.prune(path, sparsity=0.3)
    w = {t.name: numpy_helper.to_array(t) for t in result.model.graph.initializer}
    orig = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    fc = w["fc_w"]
    assert np.count_nonzero(fc == 0) == int(0.3 * fc.size)
    kept_min = np.abs(orig["fc_w"][fc != 0]).min()
    assert np.abs(orig["fc_w"][fc == 0]).max() <= kept_min  # the smallest ones went
    assert len(result.layers) == 5  # four Convs and the Gemm
    pruned = result.save(str(tmp_path / "mag.onnx"))
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_run(pruned, {"x": x}), ort_reference.run_ort(pruned, {"x": x})["logits"],
                               rtol=1e-4, atol=1e-4)


def test_exclude_and_bad_arguments(tmp_path):
    path = small_cnn(str(tmp_path / "cnn.onnx"))
    assert compress.prune(path, 0.5, structured=True, exclude=["expand"]).layers == []
    assert all(layer["op_type"] != "Gemm" for layer in compress.prune(path, 0.5, exclude=["Gemm"]).layers)
    for bad in (1.0, -0.1, "half", float("nan")):
        with pytest.raises(rt.InvalidArgument, match="sparsity"):
            compress.prune(path, bad)
    with pytest.raises(rt.InvalidArgument, match="ONNX"):
        compress.prune(b"not a model", 0.5)


def test_distillation_brings_the_student_to_the_teacher(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((8, 16)).astype(np.float32)
    w2 = rng.standard_normal((16, 4)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "teacher", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [32, 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    teacher = rt.InferenceSession(m.SerializeToString())
    student = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    data = [{"x": rng.standard_normal((32, 8)).astype(np.float32)} for _ in range(4)]
    result = compress.distill(teacher, student, data, epochs=60, temperature=2.0, lr=1e-2)
    assert len(result.losses) == 60
    assert result.losses[-1] < 0.3 * result.losses[0], result.losses
    # Top-1 agreement with the teacher on unseen inputs.
    x = rng.standard_normal((32, 8)).astype(np.float32)
    with torch.no_grad():
        s = student(torch.from_numpy(x)).numpy()
    agree = np.mean(s.argmax(-1) == teacher.run(None, {"x": x})[0].argmax(-1))
    assert agree >= 0.7, agree
    soft = compress.soft_targets(teacher, {"x": x}, temperature=2.0)
    np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(rt.InvalidArgument, match="temperature"):
        compress.distill(teacher, student, data, temperature=0)
