"""Importing pyflame_rt picks a short OpenMP spin unless the user chose a wait policy
(devices/omp_wait.h explains why); the CLI re-executes itself with the same setting."""
import os
import subprocess
import sys

BUILD_PYTHON = os.path.join(os.path.dirname(__file__), "..", "..", "build", "python")


def _env_after_import(extra):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(extra)
    code = "import os, pyflame_rt; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_short_spin_is_the_default():
    assert _env_after_import({}) == ["1000", "None"]


def test_user_choice_wins():
    assert _env_after_import({"GOMP_SPINCOUNT": "50"}) == ["50", "None"]
    assert _env_after_import({"OMP_WAIT_POLICY": "active"}) == ["None", "active"]


def test_cli_runs_with_the_short_spin():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    cli = os.path.join(root, "build", "bin", "pyflame-rt")
    model = os.path.join(root, "examples", "models", "tiny_cnn.onnx")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    # A server stays up long enough to read the environment it was re-executed with.
    proc = subprocess.Popen([cli, "serve", model, "--port", "0", "--threads", "1"], env=env,
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving"), f"server did not start: {line!r}"
        with open(f"/proc/{proc.pid}/environ", "rb") as f:
            environ = f.read().split(b"\0")
        assert b"GOMP_SPINCOUNT=1000" in environ
    finally:
        proc.kill()
        proc.wait()
