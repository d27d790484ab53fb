"""Hardening real Debian 12 and Ubuntu 24.04 hosts through the API, then checking it from
outside as an attacker would; a second run must change nothing."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from sqlalchemy import text

from infrawatch.core.config import Settings
from infrawatch.core.db import Database
from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.provisioning.conftest import ssh_to

pytestmark = pytest.mark.hosts

HARDENING = ["base", "ssh_hardening", "firewall", "fail2ban", "auto_updates"]
SECRET = "s3cret-Value-" + uuid.uuid4().hex


async def register(api: Clients, host: LabHost, key: asyncssh.SSHKey, name: str) -> str:
    """The lab host as an inventory server with the vault key assigned."""
    r = await api.admin.post(
        "/api/v1/ssh-keys",
        json={"name": f"lab-{name}", "private_key": key.export_private_key().decode()},
    )
    assert r.status_code == 201, r.text
    key_id = r.json()["id"]
    r = await api.admin.post(
        "/api/v1/servers",
        json={
            "name": name,
            "ip_address": host.address,
            "provider": "lab",
            "lifecycle": "planned",
            "attributes": {"lab_host": host.name},
        },
    )
    assert r.status_code == 201, r.text
    server_id = r.json()["id"]
    r = await api.admin.post(
        f"/api/v1/ssh-keys/{key_id}/assignments",
        json={"server_id": server_id, "username": "admin"},
    )
    assert r.status_code == 201, r.text
    return str(server_id)


async def wait_for_run(api: Clients, run_id: str, timeout: float = 600) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            r = await api.viewer.get(f"/api/v1/provisioning/runs/{run_id}")
            assert r.status_code == 200, r.text
            run = r.json()
            if run["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.5)
    if run["status"] != "succeeded" and run["job_id"]:
        # What the job said, so a failure reads as ansible's own words.
        events = (await api.viewer.get(f"/api/v1/jobs/{run['job_id']}/events?limit=1000")).json()
        run["log"] = [
            f"{e['kind']}: {e['message']} {e.get('data') or ''}" for e in events["events"]
        ][-15:]
    return dict(run)


async def all_events(api: Clients, job_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        r = await api.viewer.get(
            f"/api/v1/jobs/{job_id}/events", params={"after": len(events), "limit": 1000}
        )
        assert r.status_code == 200, r.text
        page = r.json()["events"]
        if not page:
            return events
        events += page


def port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


async def test_hardening_a_real_host_locks_out_root_and_passwords_and_a_second_run_changes_nothing(
    api: Clients,
    db: Database,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    fresh_host: LabHost,
    lab_key: asyncssh.SSHKey,
    lab_key_file: Path,
) -> None:
    await harden_and_check(api, db, settings, caplog, fresh_host, lab_key, lab_key_file)


async def test_hardening_a_real_ubuntu_24_04_host_the_same_way(
    api: Clients,
    db: Database,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    fresh_ubuntu_host: LabHost,
    lab_key: asyncssh.SSHKey,
    lab_key_file: Path,
) -> None:
    facts = ssh_to(fresh_ubuntu_host, lab_key_file, ". /etc/os-release; echo $ID $VERSION_ID")
    assert facts.stdout.strip() == "ubuntu 24.04", facts
    await harden_and_check(api, db, settings, caplog, fresh_ubuntu_host, lab_key, lab_key_file)


async def harden_and_check(
    api: Clients,
    db: Database,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    fresh_host: LabHost,
    lab_key: asyncssh.SSHKey,
    lab_key_file: Path,
) -> None:
    """The hardening roles through the API, checked from outside; a second
    run and a check-mode run change nothing; no secret kept in clear."""
    caplog.set_level(logging.DEBUG)
    server_id = await register(api, fresh_host, lab_key, "web-1")
    r = await api.admin.post("/api/v1/secrets", json={"name": "db_password", "value": SECRET})
    assert r.status_code == 201, r.text
    # Listeners the firewall must let through (8080) or block (9090).
    started = ssh_to(
        fresh_host,
        lab_key_file,
        "for p in 8080 9090; do (setsid python3 -m http.server $p >/dev/null 2>&1 &); done",
    )
    assert started.returncode == 0, started.stderr

    body = {
        "servers": [server_id],
        "roles": HARDENING,
        "vars": {"firewall_allowed_ports": [8080]},
        "secrets": ["db_password"],
        "snapshot": False,
    }
    r = await api.operator.post("/api/v1/provisioning/runs", json=body)
    assert r.status_code == 202, r.text
    run = await wait_for_run(api, r.json()["id"])
    assert run["status"] == "succeeded", "\n".join(
        map(str, [run["error"], run["hosts"], *run["log"]])
    )
    (host,) = run["hosts"]
    assert host["status"] == "ok" and host["done_roles"] == HARDENING
    assert host["recap"]["changed"] > 0 and host["recap"]["failures"] == 0

    # From outside: no root, no passwords, the hardened algorithms.
    root = ssh_to(fresh_host, lab_key_file, "true", user="root")
    assert root.returncode == 255 and "Permission denied" in root.stderr
    password = ssh_to(
        fresh_host,
        lab_key_file,
        "true",
        PubkeyAuthentication="no",
        PreferredAuthentications="password,keyboard-interactive",
    )
    assert password.returncode == 255 and "Permission denied (publickey)" in password.stderr
    effective = ssh_to(fresh_host, lab_key_file, "sudo sshd -T").stdout.splitlines()
    assert "permitrootlogin no" in effective and "maxauthtries 3" in effective
    ciphers = next(line for line in effective if line.startswith("ciphers "))
    assert "cbc" not in ciphers and "chacha20-poly1305@openssh.com" in ciphers
    # The firewall: what was asked for is open, anything else is not.
    assert port_open(fresh_host.address, 8080)
    assert not port_open(fresh_host.address, 9090)
    jail = ssh_to(fresh_host, lab_key_file, "sudo fail2ban-client status sshd")
    assert jail.returncode == 0 and "Journal matches" in jail.stdout

    # The server went planned -> provisioning -> active.
    r = await api.viewer.get(f"/api/v1/servers/{server_id}")
    assert r.json()["lifecycle"] == "active"

    # Live progress was there: task starts and per-host results as job events.
    events = await all_events(api, run["job_id"])
    messages = [e["message"] for e in events]
    assert any(m.startswith("TASK [ssh_hardening : ") for m in messages)
    assert any(m.startswith("web-1: changed — ") for m in messages)
    assert any(m.startswith("PLAY RECAP") for m in messages)

    # The second run finds nothing to change.
    r = await api.operator.post("/api/v1/provisioning/runs", json=body)
    again = await wait_for_run(api, r.json()["id"])
    assert again["status"] == "succeeded", again
    assert again["hosts"][0]["recap"]["changed"] == 0, again["hosts"][0]
    # Check mode on the hardened host: it reads what it needs and sees nothing to do.
    r = await api.operator.post("/api/v1/provisioning/runs", json={**body, "check": True})
    checked = await wait_for_run(api, r.json()["id"])
    assert checked["status"] == "succeeded", checked.get("log")
    assert checked["hosts"][0]["recap"]["changed"] == 0, checked["hosts"][0]

    # The secret reached the run but nothing kept it in clear.
    async with db.unit_of_work(write=False) as session:
        for table in ("job_events", "jobs", "audit_records", "provisioning_runs"):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            assert rows and SECRET not in repr(rows), table
    private = lab_key.export_private_key().decode().splitlines()[1]
    assert private not in repr(events)
    assert SECRET not in caplog.text and private not in caplog.text
    # No artifacts are kept: the run's private folder went with the run.
    kept = settings.data_dir / "provisioning"
    assert not kept.exists() or not any(kept.iterdir()), list(kept.iterdir())
    # The audit says who ran what where, secrets by name only.
    r = await api.admin.get("/api/v1/audit", params={"action": "provisioning.run"})
    (record, *_) = r.json()["items"]
    assert record["actor_username"] == "operator"
    assert record["changes"]["after"]["servers"] == ["web-1"], record
    assert record["changes"]["after"]["secrets"] == ["db_password"]


async def test_fail2ban_bans_an_address_that_keeps_failing_but_never_the_controller(
    api: Clients, fresh_host: LabHost, lab_key: asyncssh.SSHKey, lab_key_file: Path
) -> None:
    server_id = await register(api, fresh_host, lab_key, "web-2")
    r = await api.operator.post(
        "/api/v1/provisioning/runs",
        json={"servers": [server_id], "roles": ["fail2ban"], "snapshot": False},
    )
    assert (await wait_for_run(api, r.json()["id"]))["status"] == "succeeded"
    attacker = "10.213.0.2"  # on the lab bridge, inside the lab's own range
    subprocess.run(["ip", "addr", "add", f"{attacker}/16", "dev", "iwlab0"], check=False)
    try:
        for _ in range(7):
            # A user that does not exist: sshd logs "Invalid user", which the jail counts.
            ssh_to(fresh_host, lab_key_file, "true", user="intruder", bind=attacker)
        async with asyncio.timeout(30):
            while True:
                status = ssh_to(fresh_host, lab_key_file, "sudo fail2ban-client status sshd")
                if attacker in status.stdout:
                    break
                await asyncio.sleep(1)
        # The controller still gets in.
        assert ssh_to(fresh_host, lab_key_file, "true").returncode == 0
    finally:
        ssh_to(fresh_host, lab_key_file, f"sudo fail2ban-client set sshd unbanip {attacker}")
        subprocess.run(["ip", "addr", "del", f"{attacker}/16", "dev", "iwlab0"], check=False)
