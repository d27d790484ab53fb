"""The validation tools against real loopback servers: the same probes as
the monitoring engine, answering with structured results and named errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.live import free_port
from tests.monitoring.servers import Certificates, serve_http, target_app


async def test_ip_addresses_are_classified(api: Any) -> None:
    expected = {
        "10.1.2.3": ("private", 4),
        "127.0.0.1": ("loopback", 4),
        "::1": ("loopback", 6),
        "169.254.1.1": ("link_local", 4),
        "192.0.2.10": ("reserved", 4),
        "240.0.0.1": ("reserved", 4),
        "1.1.1.1": ("public", 4),
        "2001:4860::8888": ("public", 6),
        "0.0.0.0": ("unspecified", 4),  # noqa: S104 (a string to classify, not a bind)
        "224.0.0.1": ("multicast", 4),
    }
    for value, (classification, version) in expected.items():
        body = (await api.operator.post("/api/v1/validate/ip", json={"value": value})).json()
        assert (body["valid"], body["classification"], body["version"]) == (
            True,
            classification,
            version,
        ), value
    bad = (await api.operator.post("/api/v1/validate/ip", json={"value": "300.1.1.1"})).json()
    assert bad == {**bad, "valid": False, "error": "not a valid IPv4 or IPv6 address"}
    assert (await api.viewer.post("/api/v1/validate/ip", json={"value": "::1"})).status_code == 403


async def test_hostnames_are_checked_and_resolved(api: Any) -> None:
    local = (
        await api.operator.post("/api/v1/validate/hostname", json={"value": "localhost"})
    ).json()
    assert local["valid"] and "127.0.0.1" in local["a"] and local["latency_ms"] >= 0
    bad = (await api.operator.post("/api/v1/validate/hostname", json={"value": "-bad-.x"})).json()
    assert bad["valid"] is False and "RFC 1123" in bad["error"]
    unresolved = (
        await api.operator.post(
            "/api/v1/validate/hostname", json={"value": "no-such-host.invalid", "timeout": 3}
        )
    ).json()
    assert unresolved["valid"] and unresolved["a"] == []
    assert unresolved["resolution_error"].startswith("DNS failure")


async def test_tcp_reports_latency_or_a_named_error(api: Any) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        open_ = await api.operator.post(
            "/api/v1/validate/tcp", json={"host": "127.0.0.1", "port": port}
        )
        assert open_.json()["ok"] is True and open_.json()["latency_ms"] > 0
    finally:
        server.close()
        await server.wait_closed()
    closed = (
        await api.operator.post("/api/v1/validate/tcp", json={"host": "127.0.0.1", "port": port})
    ).json()
    assert (closed["ok"], closed["error"]) == (False, "connection refused")
    invalid = await api.operator.post(
        "/api/v1/validate/tcp", json={"host": "no spaces allowed", "port": 80}
    )
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "host"]
    too_long = await api.operator.post(
        "/api/v1/validate/tcp", json={"host": "127.0.0.1", "port": 80, "timeout": 600}
    )
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"][-1] == "timeout"


async def test_http_reports_status_timings_and_the_redirect_chain(api: Any) -> None:
    async with serve_http(target_app()) as (_, port):
        response = await api.operator.post(
            "/api/v1/validate/http", json={"url": f"http://127.0.0.1:{port}/redirect/1"}
        )
    body = response.json()
    assert body["ok"] is True and body["status_code"] == 200
    assert [hop["status"] for hop in body["details"]["hops"]] == [302, 302, 200]
    assert set(body["details"]["timings_ms"]) >= {"connect", "first_byte", "total"}
    refused = (
        await api.operator.post(
            "/api/v1/validate/http", json={"url": f"http://127.0.0.1:{free_port()}/"}
        )
    ).json()
    assert (refused["ok"], refused["error"]) == (False, "connection refused")
    wrong = await api.operator.post("/api/v1/validate/http", json={"url": "ftp://127.0.0.1/"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "url"]


async def test_tls_reports_expiry_issuer_names_and_chain(api: Any, tmp_path: Path) -> None:
    certs = Certificates(tmp_path)
    async with serve_http(target_app(), certs.server_context(certs.valid)) as (_, port):
        body = (
            await api.operator.post(
                "/api/v1/validate/tls", json={"host": "127.0.0.1", "port": port}
            )
        ).json()
    certificate = body["details"]["certificate"]
    assert set(certificate["sans"]) == {"localhost", "127.0.0.1"}
    assert certificate["issuer"] and 89 < certificate["days_left"] <= 90
    assert certificate["hostname_match"] is True
    # The private CA is not in the system's trust store: the chain fails,
    # and the tool says so while still reporting everything else.
    assert certificate["chain_valid"] is False and certificate["verification_error"]
    assert body["ok"] is False and "chain does not verify" in body["error"]
