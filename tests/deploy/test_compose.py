"""deploy/docker-compose.yml: valid for Compose, and what a schema cannot
see — nothing published beyond loopback, no secret in the file, every file
it mounts present, the replicas the issue asks for — plus the secrets
generator it runs first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def validate(document: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose config` where the plugin exists, else Debian's
    docker-compose 1.29, whose schema predates the top-level `name:`."""
    candidate = tmp_path / "docker-compose.yml"
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        command = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose"]
        document = {k: v for k, v in document.items() if k != "name"}
    else:
        unavailable("docker compose or docker-compose (apt-get install docker-compose)")
    candidate.write_text(yaml.safe_dump(document))
    return subprocess.run(
        [*command, "--project-directory", str(DEPLOY), "-f", str(candidate), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_compose_file_is_valid_and_a_broken_one_is_not(tmp_path: Path) -> None:
    checked = validate(compose(), tmp_path)
    assert checked.returncode == 0, checked.stderr
    broken = compose()
    broken["services"]["proxy"]["ports"] = 5
    refused = validate(broken, tmp_path)
    assert refused.returncode != 0 and "ports" in refused.stderr, refused.stderr


def test_the_cluster_has_what_it_should_and_exposes_nothing() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", "api-1", "api-2", "worker-1", "worker-2", "proxy"):
        assert name in services, name
    assert {"prometheus", "grafana"} <= services.keys()
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        environment = service.get("environment", {})
        for key, value in environment.items():
            secretive = any(word in key for word in ("PASSWORD", "SECRET", "KEY", "DATABASE_URL"))
            if secretive:
                assert key.endswith("_FILE"), f"{name}: {key} should be read from a file"
                assert str(value).startswith("/run/infrawatch/"), (name, key, value)
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is missing"
    for api in ("api-1", "api-2"):
        assert services[api]["environment"]["INFRAWATCH_ENGINE_ENABLED"] == "false"
    assert services["worker-1"]["command"][:2] == ["infrawatch", "worker"]
    # The proxy is the one address whose X-Forwarded-For the replicas believe.
    proxy_ip = services["proxy"]["networks"]["default"]["ipv4_address"]
    assert proxy_ip in services["api-1"]["environment"]["INFRAWATCH_TRUSTED_PROXIES"]


def test_the_secrets_are_made_once_and_kept(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the generator hands its files to the image's user: it runs as root")
    folder = tmp_path / "secrets"
    script = DEPLOY / "compose" / "init-secrets.py"
    first = subprocess.run(
        [sys.executable, str(script), str(folder)], capture_output=True, text=True, check=True
    )
    assert "generated master_key" in first.stdout
    made = {p.name: p.read_text() for p in folder.iterdir()}
    assert set(made) == {
        "postgres_password",
        "database_url",
        "master_key",
        "session_secret",
        "grafana_admin_password",
    }
    assert made["postgres_password"].strip() in made["database_url"]
    assert made["database_url"].startswith("postgresql+asyncpg://infrawatch:")
    assert (folder / "master_key").stat().st_uid == 10001
    second = subprocess.run(
        [sys.executable, str(script), str(folder)], capture_output=True, text=True, check=True
    )
    assert second.stdout == ""
    assert {p.name: p.read_text() for p in folder.iterdir()} == made
