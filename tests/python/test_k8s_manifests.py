"""deploy/k8s: the manifests lint clean (yamllint, strict) and agree with the server's routes."""
import pathlib
import shutil
import subprocess

import pytest
import yaml

K8S = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "k8s"
YAMLLINT = shutil.which("yamllint") or "/usr/bin/yamllint"


def _lint(*paths):
    return subprocess.run([YAMLLINT, "-s", "-c", str(K8S / ".yamllint"), *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def _docs():
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def test_manifests_lint_clean():
    result = _lint(K8S)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_catches_a_broken_manifest(tmp_path):
    # The linter really runs: a duplicate key and trailing spaces fail it.
    bad = tmp_path / "bad.yaml"
    bad.write_text("---\nkind: Service\nkind: Deployment   \n")
    result = _lint(bad)
    assert result.returncode != 0
    assert "duplicate" in result.stdout and "trailing" in result.stdout


def test_probes_use_the_kserve_health_routes():
    container = _docs()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8001}
    args = container["args"]
    assert args[args.index("--http-port") + 1] == "8000" and args[args.index("--grpc-port") + 1] == "8001"


def test_service_and_autoscaler_target_the_deployment():
    docs = _docs()
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in docs["Service"]["spec"]["ports"]} == {"http", "grpc"}
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", docs["Deployment"]["metadata"]["name"])
    # Every $(VAR) the container expands comes from the ConfigMap it loads.
    config = docs["ConfigMap"]["data"]
    for arg in docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]:
        if arg.startswith("$("):
            assert arg[2:-1] in config, arg


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
