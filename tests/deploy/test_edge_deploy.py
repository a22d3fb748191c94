"""deploy/ for an edge on real infrastructure, judged by the tools that run here:
systemd-analyze (the unit), cloud-init (the VM's user data), kubectl kustomize and
kubernetes-validate (the manifests), docker-compose (the ops stack). The container image
cannot be built here (no Docker engine): its Dockerfile is read for what the other files
rely on (docs/deploy.md says so).

These tests fail, not skip, when a tool is missing: scripts/test.sh installs them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
UNIT: Final = DEPLOY / "edge" / "jalsa-edge.service"
EDGE_TOML: Final = DEPLOY / "edge" / "edge.toml"
CLOUD_INIT: Final = DEPLOY / "edge" / "cloud-init.yaml"
DOCKERFILE: Final = DEPLOY / "container" / "Dockerfile"
OVERLAY: Final = DEPLOY / "kubernetes" / "overlays" / "example-rally"
COMPOSE: Final = DEPLOY / "compose" / "ops.yml"

# `jalsa edge`'s contract (README, docs/edge.md): the contribution and /healthz on
# --listen, /metrics on --metrics.
LISTEN_PORT: Final = 8443
METRICS_PORT: Final = 9110


def run(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(argv[0])
    assert tool is not None, f"{argv[0]} is not installed (scripts/test.sh installs it)"
    return subprocess.run(
        [tool, *argv[1:]], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def edge_args(argv: list[str]) -> dict[str, str]:
    """``--listen``, ``--metrics``, ``--state`` of a ``jalsa edge`` command line."""
    assert argv[:2] == ["edge", "/etc/jalsa/edge.toml"], argv
    return dict(zip(argv[2::2], argv[3::2], strict=True))


# -- the systemd unit -----------------------------------------------------------------------
def verify_unit(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # verify checks that ExecStart's program exists: point it at the installed jalsa.
    jalsa = shutil.which("jalsa")
    assert jalsa is not None
    unit = tmp_path / "jalsa-edge.service"
    unit.write_text(text.replace("/opt/jalsa/bin/jalsa", jalsa))
    return run("systemd-analyze", "verify", str(unit))


def test_the_systemd_unit_verifies_clean(tmp_path: Path) -> None:
    result = verify_unit(UNIT.read_text(), tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # The same check sees a mistake (an unknown key is only a warning to systemd).
    broken = verify_unit(UNIT.read_text().replace("Restart=always", "Restartt=always"), tmp_path)
    assert "Unknown key 'Restartt'" in broken.stderr


def test_the_unit_runs_the_edge_unprivileged_with_its_keys_out_of_the_unit() -> None:
    keys = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            keys[name] = value
    argv = shlex.split(keys["ExecStart"])
    assert argv[0] == "/opt/jalsa/bin/jalsa"
    args = edge_args(argv[1:])
    assert args["--listen"].endswith(f":{LISTEN_PORT}")
    assert args["--metrics"] == f"127.0.0.1:{METRICS_PORT}"  # /metrics not on the internet
    assert keys["DynamicUser"] == "yes" and keys["StateDirectoryMode"] == "0700"
    assert keys["EnvironmentFile"] == "/etc/jalsa/edge.env"
    assert "Environment" not in keys  # no key written into the unit itself


# -- cloud-init -------------------------------------------------------------------------------
def test_the_cloud_init_user_data_is_valid_and_carries_the_shipped_unit(tmp_path: Path) -> None:
    result = run("cloud-init", "schema", "--config-file", str(CLOUD_INIT))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(CLOUD_INIT.read_text().replace("package_update: true", "package_update: 7"))
    assert run("cloud-init", "schema", "--config-file", str(broken)).returncode != 0
    data = yaml.safe_load(CLOUD_INIT.read_text())
    files = {f["path"]: f for f in data["write_files"]}
    # The copies in the user data are the files in deploy/edge, to the byte.
    assert files["/etc/systemd/system/jalsa-edge.service"]["content"] == UNIT.read_text()
    assert files["/etc/jalsa/edge.toml"]["content"] == EDGE_TOML.read_text()
    assert files["/etc/jalsa/edge.env"]["permissions"] == "0600"
    assert ["systemctl", "enable", "--now", "jalsa-edge"] in data["runcmd"]


# -- the container image ------------------------------------------------------------------------
def test_the_image_installs_the_package_and_runs_the_edge_as_a_user_of_its_own() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^RUN pip install --no-cache-dir /src\b", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r'^ENTRYPOINT \["jalsa"\]', text, re.M)
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert edge_args(cmd)["--listen"] == f"0.0.0.0:{LISTEN_PORT}"
    assert f"{LISTEN_PORT}/healthz" in text  # HEALTHCHECK
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and "jalsa-state" in ignored  # no secrets of a local run


# -- Kubernetes ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    built = run("kubectl", "kustomize", str(OVERLAY))
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def test_the_manifests_build_and_validate_against_the_kubernetes_schemas(
    manifests: list[dict[str, Any]], tmp_path: Path
) -> None:
    core = [m for m in manifests if m["kind"] != "ServiceMonitor"]  # a CRD: no schema here
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump_all(core))
    result = run("kubernetes-validate", "--strict", "--quiet", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    # Strict validation sees a misspelt field.
    deployment = next(m for m in core if m["kind"] == "Deployment")
    deployment["spec"]["replica"] = 1
    path.write_text(yaml.safe_dump(deployment))
    assert run("kubernetes-validate", "--strict", "--quiet", str(path)).returncode != 0


def test_one_edge_per_event_non_root_probed_scraped_and_reachable_on_443(
    manifests: list[dict[str, Any]],
) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        by_kind.setdefault(m["kind"], []).append(m)
        assert m["metadata"].get("namespace", "jalsa-example-rally") == "jalsa-example-rally"
    (deployment,) = by_kind["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    args = edge_args(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (
        args["--listen"] == f"0.0.0.0:{ports['contribute']}" and ports["contribute"] == LISTEN_PORT
    )
    assert args["--metrics"] == f"0.0.0.0:{ports['metrics']}" and ports["metrics"] == METRICS_PORT
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "contribute"}
    # The edge's config is this overlay's edge.toml; its keys come from a Secret outside git.
    (config,) = by_kind["ConfigMap"]
    assert config["data"]["edge.toml"] == (OVERLAY / "edge.toml").read_text()
    assert container["envFrom"] == [{"secretRef": {"name": "jalsa-edge-keys"}}]
    assert "Secret" not in by_kind
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    public = services["jalsa-edge"]["spec"]
    assert public["type"] == "LoadBalancer"
    assert public["ports"] == [{"name": "contribute", "port": 443, "targetPort": "contribute"}]
    assert services["jalsa-edge-metrics"]["spec"]["type"] == "ClusterIP"
    (monitor,) = by_kind["ServiceMonitor"]
    labels = services["jalsa-edge-metrics"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()


# -- the ops stack ------------------------------------------------------------------------------
def test_the_ops_compose_file_is_valid_and_mounts_the_shipped_configs() -> None:
    env = {**os.environ, "GF_ADMIN_PASSWORD": "test-only"}
    result = run("docker-compose", "-f", str(COMPOSE), "config", env=env)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"prometheus", "alertmanager", "grafana", "coturn"}
    for name, service in services.items():
        assert not service["image"].endswith(":latest") and ":" in service["image"], name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/"):  # a file of this repository, not a named volume
                assert Path(source).exists(), f"{name} mounts {source}, which does not exist"
    mounted = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert "/etc/grafana/provisioning" in mounted
    # Grafana must find the dashboard where its provisioning looks for it.
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "jalsa.yml").read_text()
    )["providers"][0]["options"]["path"]
    assert any(m.startswith(provider + "/") for m in mounted)
    # The Grafana admin password must be given: no default one.
    missing = run(
        "docker-compose", "-f", str(COMPOSE), "config",
        env={k: v for k, v in os.environ.items() if k != "GF_ADMIN_PASSWORD"},
    )  # fmt: skip
    assert missing.returncode != 0 and "GF_ADMIN_PASSWORD" in missing.stderr


# -- the edge file -------------------------------------------------------------------------
@pytest.mark.parametrize("path", [EDGE_TOML, OVERLAY / "edge.toml"], ids=["vm", "kubernetes"])
def test_the_shipped_edge_files_are_valid(path: Path) -> None:
    """What ops copy to /etc/jalsa/edge.toml (or the overlay's ConfigMap) reads as jalsa
    edge reads it (both once named an HLS mirror with platform = "hls", which jalsa edge
    refuses)."""
    from orchestrator.event.edge_spec import load_edge_file

    env = {"EDGE_KEY": "k" * 24, "YT_STREAM_KEY": "yt-key", "FB_STREAM_KEY": "fb-key"}
    edge = load_edge_file(path, env)
    kinds = {d.name: d.kind for d in edge.destinations}
    assert kinds == {"youtube": "rtmp", "facebook": "rtmp", "mirror": "hls"}
    (mirror,) = [d for d in edge.destinations if d.kind == "hls"]
    assert mirror.ladder is not None and mirror.ladder.low_height == 360
