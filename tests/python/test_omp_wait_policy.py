"""libgomp's wait setting chosen before libgomp loads (python/pyflame_rt/_omp_env.py and the CLI's
re-execution, devices/cpu/omp_wait_policy.h): the rule, that libgomp
really sees the choice, that the user's variables stand, and that results do not depend on it."""

import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pyflame_rt import _omp_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
PYTHONPATH = os.path.join(REPO, "build", "python")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    env.update(PYTHONPATH=PYTHONPATH, **extra)
    return env


def spin_counts(stderr):
    """Every GOMP_SPINCOUNT libgomp displayed (OMP_DISPLAY_ENV=verbose), one per process start."""
    return [line.split("'")[1] for line in stderr.splitlines() if line.strip().startswith("GOMP_SPINCOUNT =")]


def test_rule():
    choose = _omp_env.choose_omp_wait_setting
    assert choose({}) == ("GOMP_SPINCOUNT", "10000")
    assert choose({"OMP_WAIT_POLICY": "active"}) is None
    assert choose({"OMP_WAIT_POLICY": "passive"}) is None
    assert choose({"GOMP_SPINCOUNT": "300000"}) is None
    assert choose({"OMP_WAIT_POLICY": ""}) is None


def test_libgomp_sees_the_packages_choice():
    code = "import pyflame_rt._omp_env as e, pyflame_rt; print(e.APPLIED)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=clean_env(OMP_DISPLAY_ENV="verbose"))
    assert r.returncode == 0, r.stderr
    applied = r.stdout.strip().splitlines()[-1]
    assert applied == "('GOMP_SPINCOUNT', '10000')"
    assert spin_counts(r.stderr) == ["10000"], r.stderr


def test_nothing_is_set_when_libgomp_was_loaded_first():
    code = ("import ctypes, os; ctypes.CDLL('libgomp.so.1'); import pyflame_rt._omp_env as e; "
            "print(e.APPLIED, os.environ.get('GOMP_SPINCOUNT'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "None"]


def test_the_users_wait_policy_stands_in_python_and_the_cli():
    r = subprocess.run([sys.executable, "-c", "import pyflame_rt"], capture_output=True, text=True, timeout=120,
                       env=clean_env(OMP_DISPLAY_ENV="verbose", GOMP_SPINCOUNT="7"))
    assert spin_counts(r.stderr) == ["7"], r.stderr
    r = subprocess.run([CLI, "--version"], capture_output=True, text=True, timeout=120,
                       env=clean_env(OMP_DISPLAY_ENV="verbose", GOMP_SPINCOUNT="7"))
    assert r.returncode == 0 and "pyflame-rt" in r.stdout
    assert spin_counts(r.stderr) == ["7"], r.stderr  # no re-execution


def test_cli_reexecutes_once_with_the_brief_spin():
    r = subprocess.run([CLI, "--version"], capture_output=True, text=True, timeout=120,
                       env=clean_env(OMP_DISPLAY_ENV="verbose"))
    assert r.returncode == 0 and r.stdout.count("pyflame-rt") == 1, r.stdout
    # The first start loads libgomp with its default, then executes itself again with the brief spin.
    assert spin_counts(r.stderr) == ["300000", "10000"], r.stderr


def conv_model(path):
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32), "w")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 16, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["c"]),
             helper.make_node("ReduceMean", ["c"], ["y"], axes=[2, 3], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 40, 40])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], [w, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_results_do_not_depend_on_the_wait_policy(tmp_path):
    model = str(tmp_path / "m.onnx")
    conv_model(model)
    np.save(tmp_path / "x.npy", np.random.default_rng(4).standard_normal((2, 8, 40, 40)).astype(np.float32))
    code = ("import sys, numpy as np, pyflame_rt as rt\n"
            "s = rt.InferenceSession(sys.argv[1], rt.SessionOptions(num_threads=int(sys.argv[2])))\n"
            "np.save(sys.argv[3], s.run(None, {'x': np.load(sys.argv[4])})[0])\n")
    results = {}
    for policy in ("passive", "active"):
        for threads in (1, 2, 4):
            out = str(tmp_path / f"{policy}{threads}.npy")
            subprocess.run([sys.executable, "-c", code, model, str(threads), out, str(tmp_path / "x.npy")],
                           check=True, timeout=120, env=clean_env(OMP_WAIT_POLICY=policy))
            results[policy, threads] = np.load(out)
    assert np.abs(results["active", 1]).max() > 0
    for threads in (1, 2, 4):
        np.testing.assert_array_equal(results["passive", threads], results["active", threads])
    for key, value in results.items():
        np.testing.assert_allclose(value, results["active", 1], rtol=1e-5, atol=1e-5, err_msg=str(key))
