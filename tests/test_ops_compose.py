"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs on these machines).

What is checked is what breaks a ``docker compose up`` in practice: a service or healthcheck missing, a
port published beyond loopback, a mounted file that does not exist, a build target that is not a stage,
and for the image: a root user, no HEALTHCHECK, or torch sneaking into the serving layer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
_DEFAULT = re.compile(r"\$\{\w+:-([^}]*)\}")
RUNTIME_OUTPUTS = ("artifacts/",)  # created by make data / export / loadtest, not part of a clone


def _expand(value: str) -> str:
    return _DEFAULT.sub(lambda m: m.group(1), value)


def _stages() -> dict[str, str]:
    """stage name -> its Dockerfile text (up to the next FROM)."""
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
    return {re.search(r"\bAS (\S+)", p.splitlines()[0]).group(1): p for p in parts}  # type: ignore[union-attr]


def test_compose_defines_the_stack_with_locust_behind_a_profile() -> None:
    assert set(SERVICES) == {"redis", "prectr", "prometheus", "grafana", "locust"}
    assert SERVICES["locust"]["profiles"] == ["loadtest"]
    assert all("profiles" not in s for name, s in SERVICES.items() if name != "locust")


def test_long_running_services_have_healthchecks_and_prectr_waits_for_a_healthy_redis() -> None:
    for name in ("redis", "prectr", "prometheus", "grafana"):
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD", name
    assert "/healthz" in " ".join(SERVICES["prectr"]["healthcheck"]["test"])
    assert SERVICES["prectr"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert SERVICES["locust"]["depends_on"]["prectr"]["condition"] == "service_healthy"


def test_prectr_reads_redis_and_a_mounted_bundle_from_its_settings() -> None:
    env, volumes = SERVICES["prectr"]["environment"], SERVICES["prectr"]["volumes"]
    assert env["PRECTR_REDIS__URL"].startswith("redis://redis:6379")
    bundle_mount = next(v for v in volumes if _expand(v).split(":")[1] == "/bundles")
    assert bundle_mount.endswith(":ro")
    assert _expand(env["PRECTR_BUNDLE__PATH"]).startswith("/bundles/")


def test_ports_bind_loopback_only_and_match_the_scrape_config() -> None:
    expected = {"redis": 6379, "prectr": 8000, "prometheus": 9090, "grafana": 3000}
    for name, port in expected.items():
        assert SERVICES[name]["ports"] == [f"127.0.0.1:{port}:{port}"], name
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "prectr")
    assert job["static_configs"][0]["targets"] == ["prectr:8000"]


def test_every_mounted_local_path_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = _expand(volume).split(":")[0]
            if not source.startswith("."):
                continue  # a named volume
            rel = source.removeprefix("./")
            if not rel.startswith(RUNTIME_OUTPUTS):
                assert (ROOT / rel).exists(), f"{name}: {source} does not exist"


def test_grafana_mounts_the_provisioning_and_the_dashboard_it_provisions() -> None:
    g = SERVICES["grafana"]
    mounts = dict(_expand(v).split(":")[:2] for v in g["volumes"])
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/prectr.yml").read_text())[
        "providers"
    ][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = g["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (
        ROOT / "deploy/grafana/dashboards" / Path(home).relative_to(provider["options"]["path"])
    ).is_file()


def test_build_targets_are_dockerfile_stages() -> None:
    stages = _stages()
    for name in ("prectr", "locust"):
        assert SERVICES[name]["build"]["target"] in stages, name


def test_serving_image_is_multistage_non_root_with_healthcheck_and_no_torch() -> None:
    stages = _stages()
    runtime = stages["runtime"]
    assert list(stages)[-1] == "runtime", "the serving image must be the default (last) stage"
    users = re.findall(r"^USER (\S+)", runtime, flags=re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", runtime, flags=re.M)
    build = stages["build"]
    installs = [
        line for line in DOCKERFILE.splitlines() if "pip install" in line and not line.startswith("#")
    ]
    assert any("pip install /src " in line for line in installs)
    assert not [line for line in installs if re.search(r"train|torch|transformers", line)]
    assert "import torch" in build  # the build fails if torch is importable


def test_gpu_variant_is_a_build_argument_on_a_cuda_runtime_base() -> None:
    assert re.search(r"^ARG VARIANT=cpu$", DOCKERFILE, flags=re.M)
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-runtime-\S+$", DOCKERFILE, flags=re.M)
    assert "FROM base-${VARIANT} AS runtime" in DOCKERFILE and "onnxruntime-gpu" in _stages()["build"]


def test_every_copied_source_exists_and_passes_the_dockerignore_allowlist() -> None:
    allowed = {
        line.strip("!/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE, flags=re.M):
        for src in line.split()[:-1]:
            assert (ROOT / src).exists(), f"COPY source {src} is missing"
            assert src.rstrip("/") in allowed, f"{src} is excluded by .dockerignore"


def test_compose_config_is_valid_for_the_compose_client_when_one_is_installed() -> None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        if subprocess.run([*cmd, "version"], capture_output=True, timeout=30).returncode != 0:
            continue  # e.g. the docker CLI without its compose plugin
        result = subprocess.run(
            [*cmd, "-f", str(ROOT / "docker-compose.yml"), "--profile", "loadtest", "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr
        return
    pytest.skip("no docker compose client installed (Debian: apt-get install docker-compose)")
