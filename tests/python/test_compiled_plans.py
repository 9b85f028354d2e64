"""Compiled plans: CompileOptions and from_onnx (the plan cache, shape-specialised plans),
`pyflame-rt compile` plans that InferenceSession runs directly, and an import that starts no
actor runtime."""

import os
import subprocess
import sys

import numpy as np
import pytest

import pyflame_rt as rt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
BUILD = os.environ.get("PFRT_BUILD_DIR", os.path.join(REPO, "build"))
CLI = os.path.join(BUILD, "bin", "pyflame-rt")


def _x(batch=1):
    return np.random.default_rng(5).standard_normal((batch, 3, 32, 32)).astype(np.float32)


def test_from_onnx_with_compile_options_caches_a_shape_specialised_plan(tmp_path):
    co = rt.CompileOptions(cache_dir=tmp_path / "cache", input_shapes={"image": [1, 3, 32, 32]})
    first = rt.InferenceSession.from_onnx(CNN, compile_options=co)
    second = rt.InferenceSession.from_onnx(CNN, compile_options=co)
    assert (first.compiled_from_cache, second.compiled_from_cache) == (False, True)
    assert second.get_inputs()[0].shape == [1, 3, 32, 32]
    assert len(list((tmp_path / "cache").glob("*.plan"))) == 1
    reference = rt.InferenceSession(CNN).run(None, {"image": _x()})[0]
    np.testing.assert_allclose(second.run(None, {"image": _x()})[0], reference, rtol=1e-5, atol=1e-6)
    # The plan is for batch 1 only.
    with pytest.raises(rt.InvalidArgument):
        second.run(None, {"image": _x(2)})


def test_dynamic_batch_keeps_the_batch_dim_free(tmp_path):
    co = rt.CompileOptions(cache_dir=tmp_path, input_shapes={"image": [1, 3, 32, 32]}, dynamic_batch=True)
    s = rt.InferenceSession.from_onnx(CNN, compile_options=co)
    assert s.get_inputs()[0].shape == ["batch", 3, 32, 32]
    assert s.run(None, {"image": _x(3)})[0].shape == (3, 10)


def test_compile_options_refuse_what_they_cannot_do(tmp_path):
    with pytest.raises(rt.InvalidArgument):
        rt.CompileOptions(input_shapes={"image": [1, 0, 32]})
    with pytest.raises(NotImplementedError, match="int8"):
        rt.CompileOptions(precision="int8")
    with pytest.raises(rt.InvalidArgument, match="no input 'nope'"):
        rt.InferenceSession.from_onnx(CNN, compile_options=rt.CompileOptions(input_shapes={"nope": [1]}))


def test_session_options_are_not_changed_by_compile_options(tmp_path):
    opts = rt.SessionOptions()
    rt.InferenceSession.from_onnx(CNN, opts, compile_options=rt.CompileOptions(cache_dir=tmp_path))
    assert opts.compile_cache_dir == "" and opts.input_shapes == {}


@pytest.mark.skipif(not os.path.exists(CLI), reason="the pyflame-rt CLI is not built")
def test_cli_compile_writes_a_plan_the_session_runs(tmp_path):
    plan = tmp_path / "cnn.pfm"
    done = subprocess.run([CLI, "compile", CNN, "-o", str(plan), "--opt", "all", "--input-shape", "image=1,3,32,32"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    s = rt.InferenceSession(str(plan))
    assert s.compiled_from_cache
    assert s.get_inputs()[0].shape == [1, 3, 32, 32]
    reference = rt.InferenceSession(CNN).run(None, {"image": _x()})[0]
    np.testing.assert_allclose(s.run(None, {"image": _x()})[0], reference, rtol=1e-5, atol=1e-6)

    refused = subprocess.run([CLI, "compile", CNN, "-o", str(tmp_path / "q.pfm"), "--precision", "int8"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "not available yet" in refused.stderr
    assert not (tmp_path / "q.pfm").exists()


CHILD = r"""
import sys, numpy as np
import pyflame_rt as rt
s = rt.InferenceSession(sys.argv[1])
s.run(None, {"image": np.zeros((1, 3, 32, 32), np.float32)})
print(rt.actor_runtime_threads())
f = rt.InferenceSession.create_async(sys.argv[1])
f.result(timeout=120)
print(rt.actor_runtime_threads())
"""


def test_import_and_a_session_start_no_actor_runtime():
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    out = subprocess.run([sys.executable, "-c", CHILD, CNN], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    before, after = [int(v) for v in out.stdout.split()]
    assert before == 0
    assert after > 0  # an actor feature (create_async) starts it: the count is real


CONCURRENT = r"""
import sys
import pyflame_rt as rt
s = rt.InferenceSession(sys.argv[1], rt.SessionOptions(compile_cache_dir=sys.argv[2]))
print(int(s.compiled_from_cache))
"""


def test_concurrent_processes_leave_one_good_entry(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, CNN, str(cache)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert [f.name for f in cache.iterdir() if f.is_file()] and len(list(cache.glob("*.plan"))) == 1
    assert not list(cache.glob("*.tmp*"))
    hit = rt.InferenceSession(CNN, rt.SessionOptions(compile_cache_dir=str(cache)))
    assert hit.compiled_from_cache


FULL = r"""
import resource, signal, sys
import numpy as np
import pyflame_rt as rt
# Files may not grow past 4 KB: every write of the plan fails as on a full disk.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
s = rt.InferenceSession(sys.argv[1], rt.SessionOptions(compile_cache_dir=sys.argv[2]))
print(s.run(None, {"image": np.zeros((1, 3, 32, 32), np.float32)})[0].shape)
print([w for w in s._native.warnings() if "plan cache" in w])
"""


def test_a_full_cache_directory_costs_only_the_shortcut(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    cache = tmp_path / "cache"
    out = subprocess.run([sys.executable, "-c", FULL, CNN, str(cache)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    shape, warnings_line = out.stdout.strip().splitlines()[-2:]
    assert shape == "(1, 10)"
    assert "writing" in warnings_line and "failed" in warnings_line, warnings_line
    assert not list(cache.glob("*.plan")) and not list(cache.glob("*.tmp*"))
