"""Network discovery of 127.0.0.0/24, with listeners the test opens: an
SSH-speaking one and a web server on their own loopback addresses. The
scan runs as a job on the app's embedded worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from tests.credentials.test_ssh_keys import wait_job
from tests.monitoring.helpers import eventually
from tests.monitoring.servers import serve_http

SSH_HOST, WEB_HOST = "127.0.0.7", "127.0.0.9"
BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


@contextlib.asynccontextmanager
async def ssh_greeter(host: str) -> AsyncIterator[int]:
    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(greet, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def web_app() -> web.Application:
    async def index(_: web.Request) -> web.Response:
        return web.Response(text="hello", headers={"Server": "test-web/1.0"})

    app = web.Application()
    app.router.add_route("*", "/", index)
    return app


async def test_a_scan_finds_the_listeners_and_imports_chosen_hosts(api: Any) -> None:
    async with (
        ssh_greeter(SSH_HOST) as ssh_port,
        serve_http(web_app(), host=WEB_HOST) as (_, web_port),
    ):
        known = await api.operator.post(
            "/api/v1/servers",
            json={"name": "web-known", "ip_address": WEB_HOST, "lifecycle": "active"},
        )
        assert known.status_code == 201
        started = await api.operator.post(
            "/api/v1/discovery/scans",
            json={
                "cidr": "127.0.0.0/24",
                "ports": [ssh_port, web_port],
                "rate_per_second": 2000,
                "concurrency": 200,
                "timeout": 1.0,
                "tags": {"site": "lab"},
            },
        )
        assert started.status_code == 202, started.text
        scan = started.json()
        assert (scan["cidr"], scan["addresses"]) == ("127.0.0.0/24", 254)
        job = await wait_job(api, scan["job_id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["result"]["addresses"] == 254
    assert job["result"]["probes"] == 254 * 2
    events = (await api.viewer.get(f"/api/v1/jobs/{job['id']}/events?limit=1000")).json()
    progress = [e["data"]["percent"] for e in events["events"] if e["kind"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 2

    hosts = {
        h["address"]: h
        for h in (await api.viewer.get(f"/api/v1/discovery/scans/{scan['id']}/hosts")).json()
    }
    ssh_host, web_host = hosts[SSH_HOST], hosts[WEB_HOST]
    assert ssh_host["open_ports"] == [ssh_port]
    assert ssh_host["ssh_banner"] == BANNER.decode().strip()
    assert ssh_host["os_guess"] == "Debian 12"
    assert ssh_host["server_id"] is None
    assert web_host["open_ports"] == [web_port]
    assert (
        web_host["http_banner"].startswith("HTTP/1.0 200 OK")
        and "test-web/1.0" in web_host["http_banner"]
    )
    assert web_host["server_id"] == known.json()["id"] and web_host["server_name"] == "web-known"
    read_back = (await api.viewer.get(f"/api/v1/discovery/scans/{scan['id']}")).json()
    assert (read_back["status"], read_back["progress"]) == ("succeeded", 100)
    assert read_back["hosts_found"] == len(hosts)

    imported = await api.operator.post(
        f"/api/v1/discovery/scans/{scan['id']}/import",
        json={"addresses": [SSH_HOST, WEB_HOST, "127.0.0.200"], "tags": {"team": "ops"}},
    )
    assert imported.status_code == 200, imported.text
    result = imported.json()
    assert len(result["created"]) == 1
    reasons = {s["address"]: s["reason"] for s in result["skipped"]}
    assert reasons[WEB_HOST] == "already in the inventory as web-known"
    assert reasons["127.0.0.200"] == "this scan did not find it"
    server = (await api.viewer.get(f"/api/v1/servers/{result['created'][0]}")).json()
    assert server["ip_address"] == SSH_HOST and server["lifecycle"] == "active"
    assert server["ssh_port"] == ssh_port and server["os"] == "Debian 12"
    assert server["tags"]["site"] == "lab" and server["tags"]["team"] == "ops"
    assert server["tags"]["discovered-by"].startswith("scan-")
    again = (await api.viewer.get(f"/api/v1/discovery/scans/{scan['id']}/hosts")).json()
    assert {h["address"]: h["imported_server_id"] for h in again}[SSH_HOST] == server["id"]


async def test_the_guardrails_refuse_large_or_foreign_ranges(api: Any) -> None:
    cases = {
        "10.0.0.0/16": "65536 addresses; the limit is 1024",
        "192.0.2.0/24": "outside the networks discovery may scan",
        "not-a-network": "CIDR notation",
    }
    for cidr, message in cases.items():
        response = await api.operator.post("/api/v1/discovery/scans", json={"cidr": cidr})
        assert response.status_code == 422, response.text
        (detail,) = response.json()["detail"]
        assert detail["loc"] == ["body", "cidr"] and message in detail["msg"]
    refused = await api.viewer.post("/api/v1/discovery/scans", json={"cidr": "127.0.0.0/30"})
    assert refused.status_code == 403
    jobs = (await api.viewer.get("/api/v1/jobs?type=discovery.scan")).json()
    assert jobs["total"] == 0


async def test_a_running_scan_can_be_cancelled_and_a_repeated_request_starts_nothing(
    api: Any,
) -> None:
    body = {"cidr": "127.0.1.0/24", "ports": [9], "rate_per_second": 5, "concurrency": 1}
    headers = {"Idempotency-Key": "scan-once"}
    first = await api.operator.post("/api/v1/discovery/scans", json=body, headers=headers)
    second = await api.operator.post("/api/v1/discovery/scans", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    # The same key with another body is another request, not a retry.
    other = await api.operator.post(
        "/api/v1/discovery/scans", json={**body, "ports": [10]}, headers=headers
    )
    assert other.status_code == 409, other.text
    assert "Idempotency-Key" in other.json()["detail"]
    job_id = first.json()["job_id"]

    async def running_with_progress() -> bool:
        job = (await api.viewer.get(f"/api/v1/jobs/{job_id}")).json()
        return job["status"] == "running" and job["progress"] > 0

    await eventually(running_with_progress, timeout=60)
    cancelled = await api.operator.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    job = await wait_job(api, job_id, timeout=30)
    assert job["status"] == "cancelled"
    assert 0 < job["progress"] < 100
