"""Runs as a queue: one at a time per server, the reason shown while one
waits; the lab provider's API."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest

from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.provisioning.test_hardening import register, wait_for_run

pytestmark = pytest.mark.hosts


async def test_a_second_run_on_a_busy_server_waits_behind_it_and_says_why(
    api: Clients, fresh_host: LabHost, lab_key: asyncssh.SSHKey
) -> None:
    server_id = await register(api, fresh_host, lab_key, "web-w")
    body = {"servers": [server_id], "roles": ["base", "ssh_hardening"], "snapshot": False}
    first = (await api.operator.post("/api/v1/provisioning/runs", json=body)).json()
    second = (await api.operator.post("/api/v1/provisioning/runs", json=body)).json()
    third = (
        await api.operator.post("/api/v1/provisioning/runs", json={**body, "check": True})
    ).json()
    reasons: set[str] = set()
    async with asyncio.timeout(300):
        while True:
            a = (await api.viewer.get(f"/api/v1/provisioning/runs/{first['id']}")).json()
            b = (await api.viewer.get(f"/api/v1/provisioning/runs/{second['id']}")).json()
            if b["waiting_reason"]:
                reasons.add(b["waiting_reason"])
            # Never both running on the one server.
            assert not (a["status"] == "running" and b["status"] == "running" and b["hosts"]), (
                a,
                b,
            )
            if a["status"] not in ("queued", "running") and b["status"] not in (
                "queued",
                "running",
            ):
                break
            await asyncio.sleep(0.2)
    assert a["status"] == b["status"] == "succeeded", (a, b)
    assert f"waiting for server web-w (run {first['id']})" in reasons, reasons
    assert b["started_at"] >= a["finished_at"]
    # The third waited too, and kept its place in line behind the second.
    c = await wait_for_run(api, third["id"])
    assert c["status"] == "succeeded", "\n".join(map(str, [c["hosts"], *c.get("log", [])]))
    assert c["started_at"] >= b["finished_at"], (b, c)


async def test_lab_hosts_are_for_admins_and_only_when_the_lab_is_on(
    api: Clients, lab_key: asyncssh.SSHKey
) -> None:
    r = await api.admin.post(
        "/api/v1/ssh-keys",
        json={"name": "lab-api", "private_key": lab_key.export_private_key().decode()},
    )
    key_id = r.json()["id"]
    assert (await api.operator.get("/api/v1/providers/lab/hosts")).status_code == 403
    r = await api.operator.post(
        "/api/v1/providers/lab/hosts", json={"name": "x1", "key_id": key_id}
    )
    assert r.status_code == 403
    r = await api.admin.post(
        "/api/v1/providers/lab/hosts", json={"name": "Bad Name", "key_id": key_id}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]

    name = f"api-{key_id[:6]}"
    r = await api.admin.post("/api/v1/providers/lab/hosts", json={"name": name, "key_id": key_id})
    assert r.status_code == 201, r.text
    host = r.json()
    assert host["running"] and host["server_id"]
    try:
        server = (await api.viewer.get(f"/api/v1/servers/{host['server_id']}")).json()
        assert server["provider"] == "lab" and server["ip_address"] == host["address"]
        assert server["lifecycle"] == "planned"
        r = await api.admin.post(f"/api/v1/providers/lab/hosts/{name}/snapshot?label=before")
        assert r.status_code == 200 and r.json()["snapshots"] == ["before"]
        r = await api.admin.post(f"/api/v1/providers/lab/hosts/{name}/stop")
        assert r.status_code == 200 and not r.json()["running"]
        r = await api.admin.post(f"/api/v1/providers/lab/hosts/{name}/restore?label=nope")
        assert r.status_code == 409
        r = await api.admin.post(f"/api/v1/providers/lab/hosts/{name}/start")
        assert r.json()["running"]
        listed = (await api.admin.get("/api/v1/providers/lab/hosts")).json()
        assert any(h["name"] == name and h["server_id"] == host["server_id"] for h in listed)
    finally:
        r = await api.admin.delete(f"/api/v1/providers/lab/hosts/{name}")
    assert r.status_code == 204
    assert (await api.admin.get(f"/api/v1/providers/lab/hosts/{name}/x")).status_code in (404, 405)
    server = (await api.viewer.get(f"/api/v1/servers/{host['server_id']}")).json()
    assert server["deleted_at"] is not None
    assert (await api.admin.delete(f"/api/v1/providers/lab/hosts/{name}")).status_code == 404


async def test_the_lab_provider_is_refused_when_it_is_off(api: Clients, settings: object) -> None:
    app_settings = api._app.state.runtime.settings  # type: ignore[attr-defined]
    app_settings.lab_enabled = False
    try:
        r = await api.admin.get("/api/v1/providers/lab/hosts")
        assert r.status_code == 409 and "INFRAWATCH_LAB_ENABLED" in r.json()["detail"]
    finally:
        app_settings.lab_enabled = True
