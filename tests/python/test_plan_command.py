"""`pyflame-rt plan MODEL --device wse3 [--json] [--svg FILE] [--fabric WxH] [--artifacts DIR]`:
the wafer device's report as a table or JSON, the placement as SVG, each partition's CSL."""

import json
import os
import subprocess
import xml.dom.minidom

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")


def plan(*args):
    return subprocess.run([CLI, "plan", CNN, "--device", "wse3", "--fabric", "64x64", *args],
                          capture_output=True, text=True, timeout=120)


def test_table_has_every_report_field():
    r = plan()
    assert r.returncode == 0, r.stderr
    for field in ("device                wse3", "partitions", "pes_used", "utilisation", "est_latency_us",
                  "est_throughput_per_s", "host_io_us", "rect [x,y,w,h]", "sram_max", "sram_mean", "colors",
                  "est_cycles"):
        assert field in r.stdout, field


def test_json_report_partitions_fit_the_fabric_without_overlap():
    r = plan("--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["device"] == "wse3" and rep["fabric"] == [64, 64]
    for key in ("pes_used", "utilisation", "est_latency_us", "est_throughput_per_s", "host_io_us"):
        assert key in rep, key
    rects = []
    for p in rep["partitions"]:
        x, y, w, h = p["rect"]
        assert p["pes"] == w * h
        assert 0 <= x and x + w <= 64 and 0 <= y and y + h <= 64
        assert 0 < p["sram_bytes_mean"] <= p["sram_bytes_max"] <= 48 * 1024
        assert p["est_cycles"] > 0 and isinstance(p["colors"], list)
        rects.append((p.get("system", 0), x, y, w, h))
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            overlap = a[0] == b[0] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3] and a[2] < b[2] + b[4] and b[2] < a[2] + a[4]
            assert not overlap, (a, b)
    assert 0 < rep["utilisation"] <= 1


def test_svg_draws_one_labelled_rectangle_per_partition(tmp_path):
    r = plan("--svg", str(tmp_path / "a.svg"))
    assert r.returncode == 0, r.stderr
    rep = json.loads(plan("--json").stdout)
    doc = xml.dom.minidom.parse(str(tmp_path / "a.svg"))
    groups = doc.getElementsByTagName("g")
    assert len(groups) == len(rep["partitions"])
    titles = [g.getElementsByTagName("title")[0].firstChild.data for g in groups]
    for p, title in zip(rep["partitions"], titles):
        assert title.startswith(f"p{p['id']}: {p['pes']} PEs at [{p['rect'][0]}, {p['rect'][1]}")
    plan("--svg", str(tmp_path / "b.svg"))
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_artifacts_hold_each_partitions_csl_byte_identical_across_runs(tmp_path):
    r = plan("--json", "--artifacts", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["csl"]["failed"] == {}
    assert len(rep["csl"]["written"]) == len(rep["partitions"])
    plan("--artifacts", str(tmp_path / "b"))
    for part in rep["csl"]["written"]:
        for f in ("layout.csl", "pe_program.csl", "run.py", "compile.sh"):
            a, b = tmp_path / "a" / part / f, tmp_path / "b" / part / f
            assert a.read_bytes() == b.read_bytes(), f"{part}/{f}"
        assert "--arch=wse3" in (tmp_path / "a" / part / "compile.sh").read_text()


def test_unknown_device_and_missing_model_are_errors():
    r = plan("--device", "tpu9")
    assert r.returncode == 1 and "tpu9" in r.stderr
    r = subprocess.run([CLI, "plan", "/nonexistent.onnx"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "/nonexistent.onnx" in r.stderr
    r = subprocess.run([CLI, "plan", CNN, "--fabric", "2x2"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "error" in r.stderr
