"""A real host made to fail at a known task: rolled back to its snapshot,
then retried from the role that failed once the host is fixed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.provisioning.conftest import ssh_to
from tests.provisioning.test_hardening import all_events, register, wait_for_run

pytestmark = pytest.mark.hosts

ROLES = ["base", "ssh_hardening"]
# A directory where ssh_hardening writes its banner file: its "banner" task fails.
PLANT = "sudo rm -f /etc/issue.net && sudo mkdir /etc/issue.net"
WRITTEN_BY_BASE = "/etc/sudoers.d/80-infrawatch-admin"


async def test_a_failed_run_rolls_back_to_its_snapshot_and_a_retry_resumes_at_the_failed_role(
    api: Clients,
    lab_host_factory: Callable[[str], LabHost],
    lab_key: asyncssh.SSHKey,
    lab_key_file: Path,
) -> None:
    host = lab_host_factory("resume")
    server_id = await register(api, host, lab_key, "app-1")
    assert ssh_to(host, lab_key_file, PLANT).returncode == 0

    # Rolled back: what the run wrote before it failed is gone.
    r = await api.operator.post(
        "/api/v1/provisioning/runs",
        json={"servers": [server_id], "roles": ROLES, "snapshot": True, "on_failure": "rollback"},
    )
    assert r.status_code == 202, r.text
    rolled = await wait_for_run(api, r.json()["id"])
    assert rolled["status"] == "rolled_back", "\n".join(
        map(str, [rolled["error"], rolled["hosts"], *rolled.get("log", [])])
    )
    (state,) = rolled["hosts"]
    assert state["failed_task"] == "ssh_hardening : ssh_hardening | banner"
    assert state["snapshot"]
    gone = ssh_to(host, lab_key_file, f"test -e {WRITTEN_BY_BASE}")
    assert gone.returncode == 1, gone.stderr

    # Kept: base is done, ssh_hardening failed.
    r = await api.operator.post(
        "/api/v1/provisioning/runs",
        json={"servers": [server_id], "roles": ROLES, "snapshot": False},
    )
    kept = await wait_for_run(api, r.json()["id"])
    assert kept["status"] == "failed"
    assert kept["hosts"][0]["done_roles"] == ["base"]
    assert kept["hosts"][0]["failed_role"] == "ssh_hardening"
    r = await api.operator.post(f"/api/v1/provisioning/runs/{kept['id']}/rollback")
    assert r.status_code == 409  # it took no snapshot

    # Fixed by hand, then retried: only the failed role runs again.
    assert ssh_to(host, lab_key_file, "sudo rmdir /etc/issue.net").returncode == 0
    r = await api.viewer.post(f"/api/v1/provisioning/runs/{kept['id']}/retry")
    assert r.status_code == 403
    r = await api.operator.post(f"/api/v1/provisioning/runs/{kept['id']}/retry")
    assert r.status_code == 202, r.text
    retried = await wait_for_run(api, r.json()["id"])
    assert retried["status"] == "succeeded", retried
    assert retried["retry_of"] == kept["id"]
    assert retried["hosts"][0]["done_roles"] == ROLES
    events = await all_events(api, retried["job_id"])
    tasks = [e["message"] for e in events if e["message"].startswith("TASK [")]
    assert tasks and not any(t.startswith("TASK [base : ") for t in tasks), tasks
    assert any(t.startswith("TASK [ssh_hardening : ") for t in tasks)
    r = await api.operator.post(f"/api/v1/provisioning/runs/{retried['id']}/retry")
    assert r.status_code == 409  # nothing failed


async def test_bad_runs_are_refused_naming_the_field_and_queue_nothing(
    api: Clients, fresh_host: LabHost, lab_key: asyncssh.SSHKey
) -> None:
    server_id = await register(api, fresh_host, lab_key, "db-1")
    r = await api.admin.post("/api/v1/servers", json={"name": "no-key", "ip_address": "127.0.0.1"})
    keyless = r.json()["id"]
    cases = [
        ({"servers": [server_id], "roles": ["nope"]}, ["body", "roles", 0]),
        ({"servers": [keyless], "roles": ["base"]}, ["body", "servers"]),
        ({"q": "name:nothing-like-this", "roles": ["base"]}, ["body", "q"]),
        ({"servers": [server_id], "q": "name:db-1", "roles": ["base"]}, ["body", "servers"]),
        (
            {"servers": [server_id], "roles": ["base"], "secrets": ["missing"]},
            ["body", "secrets", 0],
        ),
        (
            {
                "servers": [server_id],
                "roles": ["base"],
                "on_failure": "rollback",
                "snapshot": False,
            },
            ["body", "on_failure"],
        ),
        (
            {"servers": [server_id], "roles": ["base"], "limit_hosts": ["other"]},
            ["body", "limit_hosts", 0],
        ),
    ]
    for body, loc in cases:
        r = await api.operator.post("/api/v1/provisioning/runs", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"][0]["loc"] == loc, (body, r.json())
    r = await api.viewer.post(
        "/api/v1/provisioning/runs", json={"servers": [server_id], "roles": ["base"]}
    )
    assert r.status_code == 403
    assert (await api.viewer.get("/api/v1/provisioning/runs")).json() == []
    # The same Idempotency-Key: the same run; with another body, a 409.
    body = {"servers": [server_id], "roles": ["base"], "check": True, "limit_hosts": ["db-1"]}
    first = await api.operator.post(
        "/api/v1/provisioning/runs", json=body, headers={"Idempotency-Key": "k1"}
    )
    again = await api.operator.post(
        "/api/v1/provisioning/runs", json=body, headers={"Idempotency-Key": "k1"}
    )
    assert (
        first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    )
    other = await api.operator.post(
        "/api/v1/provisioning/runs",
        json={**body, "check": False},
        headers={"Idempotency-Key": "k1"},
    )
    assert other.status_code == 409
    assert (await wait_for_run(api, first.json()["id"]))["status"] == "succeeded"
