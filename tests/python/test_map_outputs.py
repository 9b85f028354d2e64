"""Sequence and map outputs come back as ONNX Runtime returns them: seq(tensor) as a list of
arrays, seq(map) (ZipMap, the probabilities of a scikit-learn classifier) as a list of dicts
{label: float}, with str or int labels."""

import copy

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import pyflame_rt as rt
from ort_reference import run_ort


def _seq_of_maps(name, key_type):
    t = onnx.TypeProto()
    t.sequence_type.elem_type.map_type.key_type = key_type
    t.sequence_type.elem_type.map_type.value_type.tensor_type.elem_type = TensorProto.FLOAT
    return helper.make_value_info(name, t)


def _classifier(tmp_path, labels, columns=None):
    """probs = Softmax(x) and its ZipMap: what skl2onnx makes of a classifier's predict_proba."""
    attr = ({"classlabels_strings": labels} if isinstance(labels[0], str) else {"classlabels_int64s": labels})
    key = TensorProto.STRING if isinstance(labels[0], str) else TensorProto.INT64
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["probs"], axis=1),
         helper.make_node("ZipMap", ["probs"], ["output_probability"], domain="ai.onnx.ml", **attr)],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", columns or len(labels)])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", columns or len(labels)]),
         _seq_of_maps("output_probability", key)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / "classifier.onnx"
    onnx.save(model, str(path))
    # onnxruntime-node returns tensors only ("Non tensor type is temporarily not supported"):
    # ONNX Runtime's side of the check is the same model without the map output.
    tensors_only = copy.deepcopy(model)
    del tensors_only.graph.output[1]
    del tensors_only.graph.node[1]
    ort_path = tmp_path / "classifier_tensors.onnx"
    onnx.save(tensors_only, str(ort_path))
    return str(path), str(ort_path)


@pytest.mark.parametrize("labels", [["cat", "dog", "bird"], [3, 1, 7]])
def test_zipmap_output_is_a_list_of_dicts_matching_onnxruntime(tmp_path, labels):
    path, ort_path = _classifier(tmp_path, labels)
    x = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]], np.float32)
    probs, maps = rt.InferenceSession(path).run(None, {"x": x})
    expected = run_ort(ort_path, {"x": x})["probs"]
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    assert isinstance(maps, list) and len(maps) == 2
    for row, m in zip(expected, maps):
        assert isinstance(m, dict) and list(m) == labels  # label order kept, keys str or int
        assert all(type(k) is type(labels[0]) and type(v) is float for k, v in m.items())
        assert [m[k] for k in labels] == pytest.approx(row.tolist(), rel=1e-6)


def test_zipmap_through_ortvalues_and_output_types(tmp_path):
    path, _ = _classifier(tmp_path, [0, 1, 2])
    sess = rt.InferenceSession(path)
    x = rt.OrtValue.ortvalue_from_numpy(np.zeros((1, 3), np.float32))
    values = sess.run_with_ort_values(["output_probability"], {"x": x})
    assert values[0].data_type() == "seq(map(int64,tensor(float)))"
    assert values[0].numpy() == [{0: pytest.approx(1 / 3), 1: pytest.approx(1 / 3), 2: pytest.approx(1 / 3)}]


def test_zipmap_with_labels_not_matching_columns_names_both(tmp_path):
    path, _ = _classifier(tmp_path, ["a", "b", "c"], columns=4)
    with pytest.raises(rt.InvalidArgument, match=r"4 columns.*3 class labels"):
        rt.InferenceSession(path).run(None, {"x": np.zeros((1, 4), np.float32)})


def test_sequence_output_is_a_list_of_arrays(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["a", "b"], ["s"])], "seq",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])],
        [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "seq.onnx"
    onnx.save(model, str(path))
    a, b = np.array([1, 2], np.float32), np.array([3, 4, 5], np.float32)
    (s,) = rt.InferenceSession(str(path)).run(None, {"a": a, "b": b})
    assert isinstance(s, list) and len(s) == 2
    np.testing.assert_array_equal(s[0], a)
    np.testing.assert_array_equal(s[1], b)
