"""Shared steps of the create-server and hibernation tests."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

from tests.conftest import Clients
from tests.provisioning.clouds.fakes import FakeCloud

TERMINAL = ("done", "failed")


async def vault_key(api: Clients, name: str = "builder") -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    r = await api.admin.post(
        "/api/v1/ssh-keys", json={"name": name, "private_key": key.export_private_key().decode()}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def account(api: Clients, cloud: FakeCloud, name: str | None = None, **fields: Any) -> str:
    credentials = {"vultr": {"api_key": cloud.token}}.get(cloud.kind, {"token": cloud.token})
    r = await api.admin.post(
        "/api/v1/provider-accounts",
        json={
            "name": name or f"{cloud.kind}-main",
            "kind": cloud.kind,
            "credentials": credentials,
            "api_url": cloud.url,
            **fields,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def wait_builds(api: Clients, ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    try:
        async with asyncio.timeout(timeout):
            while True:
                builds = [(await api.viewer.get(f"/api/v1/server-builds/{i}")).json() for i in ids]
                if all(b["status"] in TERMINAL for b in builds):
                    return builds
                await asyncio.sleep(0.2)
    except TimeoutError:
        # A build that hangs in CI must say where it stopped, or the next
        # run is the only way to find out.
        raise AssertionError(
            f"builds not finished after {timeout} s:\n"
            + "\n".join([await where_build_is(api, i) for i in ids])
        ) from None


async def _job_tail(api: Clients, job_id: str | None, lines: int = 15) -> str:
    if job_id is None:
        return "  (no job)"
    job = (await api.admin.get(f"/api/v1/jobs/{job_id}")).json()
    events: list[dict[str, Any]] = []
    after = 0
    while True:  # paged to the end: the last lines say where it stopped
        page = (
            await api.admin.get(f"/api/v1/jobs/{job_id}/events?after={after}&limit=1000")
        ).json()
        if not page.get("events"):
            break
        events, after = (events + page["events"])[-lines:], page["last_seq"]
    tail = [f"    {e['kind']}: {e['message']}" for e in events]
    return f"  job {job_id}: {job}\n" + "\n".join(tail)


async def where_build_is(api: Clients, build_id: str) -> str:
    build = (await api.viewer.get(f"/api/v1/server-builds/{build_id}")).json()
    told = [f"build {build_id}: {build}", await _job_tail(api, build.get("job_id"))]
    if build.get("run_id"):
        run = (await api.viewer.get(f"/api/v1/provisioning/runs/{build['run_id']}")).json()
        told += [f"  run: {run}", await _job_tail(api, run.get("job_id"))]
    return "\n".join(told)


async def wait_job(api: Clients, job_id: str, timeout: float = 120) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            job = (await api.admin.get(f"/api/v1/jobs/{job_id}")).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return dict(job)
            await asyncio.sleep(0.2)


async def made_server(
    api: Clients, kind: str, ssh_port: int, name: str, **fields: Any
) -> dict[str, Any]:
    """A server made through the `<kind>-main` account, active, with a monitor."""
    from tests.provisioning.clouds.test_providers import IMAGES, REGIONS, SIZES

    r = await api.operator.post(
        "/api/v1/servers/create",
        json={
            "provider_account": f"{kind}-main",
            "region": REGIONS[kind],
            "size": SIZES[kind],
            "image": IMAGES[kind],
            "base": False,
            "harden": False,
            "ssh_port": ssh_port,
            "name": name,
            **fields,
        },
    )
    assert r.status_code == 202, r.text
    (build,) = await wait_builds(api, [r.json()["items"][0]["id"]])
    assert build["status"] == "done", build
    monitor = await api.operator.post(
        "/api/v1/monitors",
        json={
            "name": f"{name} ssh",
            "type": "tcp",
            "target": f"127.0.0.1:{ssh_port}",
            "server_id": build["server_id"],
        },
    )
    assert monitor.status_code == 201, monitor.text
    return build
