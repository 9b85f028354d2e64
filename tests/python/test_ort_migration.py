"""The README's promise: an ONNX Runtime script runs after changing only its import.

ort_scripts/migration.py is written for onnxruntime; this test changes that one line and runs it
in a fresh interpreter."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_IMPORT = "import onnxruntime as ort\n"


def migrate(source):
    """The only edit a user makes: the import line. Nothing else names onnxruntime."""
    assert source.count(ORT_IMPORT) == 1 and source.count("onnxruntime") == 1 + source.count("ort.capi.onnxruntime")
    return source.replace(ORT_IMPORT, "import pyflame_rt as ort\n")


def test_ort_script_runs_with_only_the_import_changed(tmp_path):
    with open(os.path.join(HERE, "ort_scripts", "migration.py")) as f:
        source = f.read()
    script = tmp_path / "migrated.py"
    script.write_text(migrate(source))
    env = dict(os.environ)
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
