"""Lab hosts for the provisioning tests: real Debian 12 hosts booted with
systemd-nspawn in network namespaces these tests make (a private range with
no route out), shared by the tests of one pytest worker and removed at the
end, also when a test fails. Under CI=true a machine that cannot make them
fails the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from infrawatch.core.config import Settings
from infrawatch.provisioning.lab.hosts import Lab, LabConfig, LabHost
from tests.conftest import unavailable, worker_id

NEEDED = ("systemd-nspawn", "debootstrap", "ip", "ssh", "pkill")
FRESH = "fresh"


def _lab_missing() -> str | None:
    if os.geteuid() != 0:
        return "root (lab hosts need namespaces and mounts)"
    for tool in NEEDED:
        if shutil.which(tool) is None:
            return f"{tool} (scripts in .ci/run install it)"
    return None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    missing = _lab_missing()
    if missing:
        unavailable(missing)
    lab = Lab(LabConfig(root=tmp_path_factory.mktemp("lab")))
    yield lab
    for host in lab.hosts():
        lab.destroy(host.name)


@pytest.fixture(scope="session")
def lab_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _host_name(role: str) -> str:
    return f"t{worker_id().replace('gw', '')}-{os.getpid() % 100000}-{role}"


@pytest.fixture(scope="session")
def shared_host(lab: Lab, lab_key: asyncssh.SSHKey) -> Iterator[LabHost]:
    """One host for the tests of this worker, both databases, with a
    snapshot of it as it was made."""
    host = lab.create(_host_name("shared"), lab_key.export_public_key().decode())
    lab.snapshot(host.name, FRESH)
    yield host
    lab.destroy(host.name)


@pytest.fixture(scope="session")
def ubuntu_host(lab: Lab, lab_key: asyncssh.SSHKey) -> Iterator[LabHost]:
    """An Ubuntu 24.04 host for this worker's tests, snapshotted as made."""
    host = lab.create(_host_name("noble"), lab_key.export_public_key().decode(), "ubuntu2404")
    lab.snapshot(host.name, FRESH)
    yield host
    lab.destroy(host.name)


@pytest.fixture
def fresh_ubuntu_host(lab: Lab, ubuntu_host: LabHost) -> LabHost:
    return lab.restore(ubuntu_host.name, FRESH)


@pytest.fixture
def fresh_host(lab: Lab, shared_host: LabHost) -> LabHost:
    """The shared host as it was made (a restore takes about a second)."""
    return lab.restore(shared_host.name, FRESH)


@pytest.fixture
def lab_host_factory(lab: Lab, lab_key: asyncssh.SSHKey) -> Iterator[object]:
    """Hosts a single test needs for itself, removed when it ends."""
    made: list[str] = []

    def make(role: str) -> LabHost:
        host = lab.create(_host_name(role), lab_key.export_public_key().decode())
        made.append(host.name)
        return host

    yield make
    for name in made:
        lab.destroy(name)


@pytest.fixture
def settings(settings: Settings, lab: Lab) -> Settings:
    return settings.model_copy(
        update={"lab_enabled": True, "lab_dir": lab.config.root, "jobs_lease_seconds": 30.0}
    )


def ssh_to(
    host: LabHost,
    key_file: Path,
    command: str,
    *,
    user: str = "admin",
    bind: str | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """ssh as an outsider would; `bind`: from this local address."""
    options = [
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=5",
    ]
    for name, value in extra.items():
        options += ["-o", f"{name}={value}"]
    if bind:
        options += ["-b", bind]
    return subprocess.run(
        ["ssh", *options, "-i", str(key_file), f"{user}@{host.address}", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def lab_key_file(lab_key: asyncssh.SSHKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labkey") / "id_ed25519"
    lab_key.write_private_key(str(path))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Acme:
    directory: str
    ca_pem: str
    challtestsrv: str  # its management URL


@pytest.fixture(scope="session")
def acme(
    lab: Lab, shared_host: LabHost, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Acme]:
    """Pebble (a real ACME server) and its DNS on the lab bridge, so a lab
    host can ask it for a certificate and Pebble can validate over HTTP-01."""
    import trustme

    for tool in ("pebble", "pebble-challtestsrv"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} (apt-get install pebble)")
    folder = tmp_path_factory.mktemp("pebble")
    gateway = lab.proxy_url().split("//")[1].split(":")[0]
    ca = trustme.CA()
    cert = ca.issue_cert(gateway)
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    ports = {
        name: _free_port_on(gateway) for name in ("acme", "management", "dns", "dns_management")
    }
    config = {
        "pebble": {
            "listenAddress": f"{gateway}:{ports['acme']}",
            "managementListenAddress": f"{gateway}:{ports['management']}",
            "certificate": str(folder / "cert.pem"),
            "privateKey": str(folder / "key.pem"),
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (folder / "pebble.json").write_text(json.dumps(config))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    dns = subprocess.Popen(
        [
            "pebble-challtestsrv",
            "-dns01",
            f"{gateway}:{ports['dns']}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            f"{gateway}:{ports['dns_management']}",
            "-defaultIPv4",
            shared_host.address,
            "-defaultIPv6",
            "",
        ],
        stdout=(folder / "dns.log").open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = subprocess.Popen(
        [
            "pebble",
            "-config",
            str(folder / "pebble.json"),
            "-dnsserver",
            f"{gateway}:{ports['dns']}",
        ],
        stdout=(folder / "pebble.log").open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        for port in (ports["acme"], ports["dns_management"]):
            _wait_for_port(gateway, port)
        yield Acme(
            directory=f"https://{gateway}:{ports['acme']}/dir",
            ca_pem=ca.cert_pem.bytes().decode(),
            challtestsrv=f"http://{gateway}:{ports['dns_management']}",
        )
    finally:
        for process in (server, dns):
            process.kill()
            process.wait()


def _free_port_on(address: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(address: str, port: int) -> None:
    import socket
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {address}:{port}")
