"""The Python examples run and check themselves (they assert their own results)."""
import os
import subprocess
import sys

from conftest import REPO


def run_example(name):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "build", "python"))
    return subprocess.run([sys.executable, os.path.join(REPO, "examples", name)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_audio_stream_example_matches_one_pass():
    done = run_example("audio_stream.py")
    assert done.returncode == 0, done.stderr
    assert "== one pass over 5 s" in done.stdout
