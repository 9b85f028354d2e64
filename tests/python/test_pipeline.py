"""Pipelines from Python: model stages, Python glue, branches and join, policies, errors."""
import numpy as np
import pytest

import pyflame_rt as rt


def test_detect_crop_embed_and_liveness_join(add_relu_model):
    model = rt.InferenceSession(add_relu_model)  # y = relu(x + b), b = [1, -2, 3, -4]
    p = rt.Pipeline()
    p.add_stage("detect", fn=lambda f: {"x": f["image"][:, :4]})
    p.add_stage("embed", session=model)
    p.add_stage("liveness", fn=lambda f: {"live": (f["x"].sum(axis=1) > 0).astype(np.float32)}, after=["detect"])
    p.add_stage("join", after=["embed", "liveness"])
    with p:
        images = [np.full((1, 8), float(i - 2), np.float32) for i in range(6)]
        for img in images:
            p.push({"image": img}, stream=3)
        for i, img in enumerate(images):
            r = p.pull(timeout_ms=5000)
            assert r.ok and (r.stream, r.seq) == (3, i)
            np.testing.assert_allclose(r.outputs["y"], model.run(None, {"x": img[:, :4]})[0])
            assert r.outputs["live"][0] == float(img.sum() > 0)
        names = [m["name"] for m in p.metrics()]
        assert names == ["detect", "embed", "liveness", "join"]
        assert all(m["processed"] == 6 for m in p.metrics())


def test_a_stage_that_raises_fails_that_frame_and_names_the_stage():
    def picky(f):
        if f["x"][0] < 0:
            raise ValueError("no negative frames")
        return {"x": f["x"] * 2}

    p = rt.Pipeline().add_stage("picky", fn=picky).start()
    for v in (1.0, -1.0, 2.0):
        p.push({"x": np.array([v], np.float32)})
    results = [p.pull(5000) for _ in range(3)]
    assert results[0].ok and results[2].ok
    assert isinstance(results[1].error, rt.RuntimeException)
    with pytest.raises(rt.RuntimeException, match=r"stage 'picky'.*no negative frames"):
        results[1].raise_for_error()
    assert p.metrics()[0]["failed"] == 1
    p.close()
    with pytest.raises(rt.Unavailable):
        p.push({"x": np.array([1.0], np.float32)})
    with pytest.raises(rt.Unavailable, match="drained"):
        p.pull(100)
    p.stop()


def test_drop_newest_accounts_for_every_frame():
    import time

    def slow(f):
        time.sleep(0.005)
        return f

    p = rt.Pipeline().add_stage("slow", fn=slow, capacity=1, policy="drop_newest").start()
    for i in range(20):
        p.push({"i": np.array([i], np.int64)})
    p.close()
    results = [p.pull(5000) for _ in range(20)]
    assert [r.seq for r in results] == list(range(20))
    dropped = [r for r in results if r.dropped_at]
    assert dropped and all(r.dropped_at == "slow" for r in dropped)
    assert len(dropped) == p.metrics()[0]["dropped"]
    for r in results:
        if r.ok:
            assert r.outputs["i"][0] == r.seq
    p.stop()


def test_bad_stage_definitions_are_refused():
    with pytest.raises(rt.InvalidArgument, match="policy"):
        rt.Pipeline().add_stage("a", fn=lambda f: f, policy="sometimes")
    with pytest.raises(rt.InvalidArgument, match="'ghost'"):
        rt.Pipeline().add_stage("a", fn=lambda f: f, after=["ghost"]).start()
    p = rt.Pipeline().add_stage("bad_return", fn=lambda f: 42).start()
    p.push({"x": np.zeros(1, np.float32)})
    r = p.pull(5000)
    assert r.error is not None and "bad_return" in str(r.error) and "expected a dict" in str(r.error)
    p.stop()


def test_a_model_split_into_partitions_gives_the_whole_models_outputs():
    import os
    cnn = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "examples", "models", "tiny_cnn.onnx")
    whole = rt.InferenceSession(cnn)
    with rt.Pipeline.from_partitions(cnn, partitions=3) as p:
        assert [d["name"] for d in p.partitions] == ["p0", "p1", "p2"]
        assert abs(sum(d["cost_share"] for d in p.partitions) - 1.0) < 1e-9
        assert p.partitions[0]["inputs"] == ["image"] and p.partitions[-1]["outputs"] == ["probs"]
        xs = [np.random.default_rng(i).standard_normal((2, 3, 32, 32)).astype(np.float32) for i in range(4)]
        for x in xs:
            p.push({"image": x})
        for x in xs:
            r = p.pull(10000)
            assert r.ok, r
            assert list(r.outputs) == ["probs"]
            np.testing.assert_allclose(r.outputs["probs"], whole.run(None, {"image": x})[0], rtol=1e-5, atol=1e-6)
        assert [m["name"] for m in p.metrics()] == ["p0", "p1", "p2"]
    with pytest.raises(rt.InvalidArgument, match="partitions: expected an int >= 1"):
        rt.Pipeline.from_partitions(cnn, partitions=0)
