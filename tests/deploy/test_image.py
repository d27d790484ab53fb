"""The container image, built for real: Debian's dockerd started by the
test (no bridge, no iptables: this machine's network stays as it is), the
image built by scripts/docker-image from the lab's Debian 12 root file
system (no registry is reachable here), then `infrawatch serve` run in it
until its own health check says healthy, as the unprivileged user."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import unavailable
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
# Layers are kept between runs: a second build reuses them.
CACHE = Path(os.environ.get("INFRAWATCH_DOCKER_CACHE", "/var/cache/infrawatch-docker"))
RUN = Path("/run/infrawatch-docker")
TAG = "infrawatch:test"


def docker(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@contextlib.contextmanager
def daemon() -> Iterator[dict[str, str]]:
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        unavailable("a Docker engine (apt-get install docker.io)")
    if os.geteuid() != 0:
        pytest.skip("dockerd is started by the test: it runs as root")
    RUN.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    socket = RUN / "docker.sock"
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}"}
    pidfile = RUN / "docker.pid"
    if pidfile.exists():  # a run killed before it stopped its daemon
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), 15)
        time.sleep(2)
        pidfile.unlink(missing_ok=True)
    log = (RUN / "dockerd.log").open("w")
    process = subprocess.Popen(
        [
            "dockerd",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--data-root",
            str(CACHE / "root"),
            "--exec-root",
            str(RUN / "exec"),
            "--pidfile",
            str(pidfile),
            "-H",
            f"unix://{socket}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while docker(env, "version").returncode != 0:
            assert process.poll() is None, (RUN / "dockerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dockerd did not answer within 60 s"
            time.sleep(0.5)
        yield env
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_image_builds_runs_healthy_and_unprivileged() -> None:
    with daemon() as env:
        built = subprocess.run(
            [str(ROOT / "scripts" / "docker-image"), "--from-lab"],
            env={**env, "TAG": TAG},
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
            cwd=ROOT,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        config = json.loads(docker(env, "image", "inspect", TAG).stdout)[0]["Config"]
        assert config["User"] == "infrawatch"
        assert "/readyz" in " ".join(config["Healthcheck"]["Test"])
        # The CA given to the build stage is not in the image.
        listing = docker(env, "run", "--rm", "--network", "none", TAG, "ls", "/")
        assert "build-ca" not in listing.stdout.split(), listing.stdout
        assert (
            docker(env, "run", "--rm", "--network", "none", TAG, "id", "-u").stdout.strip()
            == "10001"
        )
        helped = docker(env, "run", "--rm", "--network", "none", TAG, "infrawatch", "--help")
        assert helped.returncode == 0 and "serve" in helped.stdout, helped.stdout + helped.stderr

        # No bridge here: the container shares the host's loopback, on a port of its own.
        port = free_port()
        name = f"iw-test-{port}"
        started = docker(
            env,
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            "--env",
            f"INFRAWATCH_PORT={port}",
            "--env",
            "INFRAWATCH_HOST=127.0.0.1",
            TAG,
            "sh",
            "-c",
            'exec infrawatch serve --host 127.0.0.1 --port "$INFRAWATCH_PORT"',
        )
        assert started.returncode == 0, started.stderr
        try:
            deadline = time.monotonic() + 120
            health = ""
            while health != "healthy":
                assert time.monotonic() < deadline, docker(env, "logs", name).stdout[-3000:]
                inspected = json.loads(docker(env, "inspect", name).stdout)[0]["State"]
                assert inspected["Running"], docker(env, "logs", name).stdout[-3000:]
                health = inspected["Health"]["Status"]
                time.sleep(1)
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json()["checks"]["migrations"] == "ok"
        finally:
            docker(env, "rm", "--force", name)
