"""Every probe against a real server on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from infrawatch.probes.certs import client_context
from infrawatch.probes.dns import probe_dns
from infrawatch.probes.http import HttpClient, probe_http
from infrawatch.probes.net import probe_ssh, probe_tcp, probe_tls
from infrawatch.probes.ping import SYSCTL_HINT, probe_ping
from tests.monitoring.servers import (
    Certificates,
    serve_banner,
    serve_dns,
    serve_http,
    target_app,
)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with HttpClient() as client:
        yield client


@pytest.fixture
async def target() -> AsyncIterator[str]:
    async with serve_http(target_app()) as (_, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def certs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Certificates:
    certificates = Certificates(tmp_path)
    # The probes trust what the system trusts; here that is our test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    client_context.cache_clear()
    yield certificates  # type: ignore[misc]
    client_context.cache_clear()


async def test_http_success_carries_status_body_and_phase_timings(
    http: HttpClient, target: str
) -> None:
    result = await probe_http(http, f"{target}/ok", {}, 5)
    assert result.ok and result.status_code == 200
    assert '"status": "ok"' in result.facts["BODY"]
    timings = result.details["timings_ms"]
    assert {"dns", "connect", "first_byte", "total"} <= set(timings)
    assert timings["total"] >= timings["first_byte"] > 0


async def test_http_status_outside_the_accepted_ranges_fails(http: HttpClient, target: str) -> None:
    result = await probe_http(http, f"{target}/broken", {}, 5)
    assert not result.ok and "503" in (result.error or "")
    accepted = await probe_http(http, f"{target}/broken", {"accepted_status_codes": ["500-599"]}, 5)
    assert accepted.ok


async def test_http_keyword_and_json_path_assertions(http: HttpClient, target: str) -> None:
    assert (await probe_http(http, f"{target}/ok", {"keyword": "items"}, 5)).ok
    missing = await probe_http(http, f"{target}/ok", {"keyword": "banana"}, 5)
    assert not missing.ok and "banana" in (missing.error or "")
    present = await probe_http(
        http,
        f"{target}/broken",
        {"keyword_absent": "maintenance", "accepted_status_codes": ["503"]},
        5,
    )
    assert not present.ok and "absent" in (present.error or "")
    good = await probe_http(http, f"{target}/ok", {"json_path": "status", "json_expected": "ok"}, 5)
    assert good.ok
    bad = await probe_http(http, f"{target}/ok", {"json_path": "status", "json_expected": "up"}, 5)
    assert not bad.ok and "expected 'up'" in (bad.error or "")
    # The JSONPath form users bring from Uptime Kuma.
    rooted = await probe_http(
        http, f"{target}/ok", {"json_path": "$.status", "json_expected": "ok"}, 5
    )
    assert rooted.ok, rooted.error
    indexed = await probe_http(
        http, f"{target}/ok", {"json_path": "$.items[0]", "json_expected": "1"}, 5
    )
    assert indexed.ok, indexed.error


async def test_http_redirects_are_followed_hop_by_hop(http: HttpClient, target: str) -> None:
    result = await probe_http(http, f"{target}/redirect/2", {}, 5)
    assert result.ok
    assert [hop["status"] for hop in result.details["hops"]] == [302, 302, 302, 200]
    assert result.details["hops"][-1]["url"].endswith("/ok")


async def test_http_redirect_loops_and_too_many_hops_are_named(
    http: HttpClient, target: str
) -> None:
    loop = await probe_http(http, f"{target}/loop", {}, 5)
    assert not loop.ok and "redirect loop" in (loop.error or "")
    many = await probe_http(http, f"{target}/redirect/5", {"max_redirects": 3}, 5)
    assert not many.ok and "too many redirects" in (many.error or "")


async def test_http_timeout_and_refused_connection_are_named(http: HttpClient, target: str) -> None:
    slow = await probe_http(http, f"{target}/slow?s=3", {}, 0.5)
    assert not slow.ok and "timed out" in (slow.error or "")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    refused = await probe_http(http, f"http://127.0.0.1:{closed_port}/", {}, 2)
    assert not refused.ok and "refused" in (refused.error or "").lower()


async def test_https_reads_certificate_expiry_and_tls_timing(
    http: HttpClient, certs: Certificates
) -> None:
    async with serve_http(target_app(), certs.server_context(certs.expiring)) as (_, port):
        result = await probe_http(http, f"https://localhost:{port}/ok", {}, 5)
    assert result.ok, result.error
    assert 2 < result.details["certificate"]["days_left"] <= 3
    assert result.cert_expires_at is not None
    assert "tls" in result.details["timings_ms"]


async def test_https_with_an_untrusted_certificate_fails_unless_verification_is_off(
    http: HttpClient, certs: Certificates
) -> None:
    async with serve_http(target_app(), certs.server_context(certs.wrong_host)) as (_, port):
        strict = await probe_http(http, f"https://localhost:{port}/ok", {}, 5)
        lax = await probe_http(http, f"https://localhost:{port}/ok", {"verify_tls": False}, 5)
    assert not strict.ok and "certificate" in (strict.error or "")
    assert lax.ok and lax.details["certificate"]["subject"]


@pytest.mark.parametrize(
    ("leaf", "ok", "message"),
    [
        ("valid", True, None),
        ("expiring", True, None),
        ("expired", False, "expired"),
        ("wrong_host", False, "does not match"),
    ],
)
async def test_tls_probe_tells_certificate_states_apart(
    certs: Certificates, leaf: str, ok: bool, message: str | None
) -> None:
    async with serve_http(target_app(), certs.server_context(getattr(certs, leaf))) as (_, port):
        result = await probe_tls(f"localhost:{port}", {}, 5)
    assert result.ok is ok, result.error
    if message:
        assert message in (result.error or "")
    info = result.details["certificate"]
    assert info["issuer"] and "not_after" in info  # read even when it fails
    assert isinstance(info["chain_valid"], bool)


async def test_tls_chain_failure_is_reported_with_the_reason(tmp_path: Path) -> None:
    certificates = Certificates(tmp_path)  # its CA is not trusted here
    async with serve_http(target_app(), certificates.server_context(certificates.valid)) as (
        _,
        port,
    ):
        result = await probe_tls(f"localhost:{port}", {}, 5)
        relaxed = await probe_tls(f"localhost:{port}", {"verify_chain": False}, 5)
    assert not result.ok and "chain does not verify" in (result.error or "")
    assert result.details["certificate"]["days_left"] > 80
    assert relaxed.ok


async def test_tcp_connects_and_checks_the_banner() -> None:
    async with serve_banner(b"220 mail.test ESMTP ready\r\n") as port:
        good = await probe_tcp(f"127.0.0.1:{port}", {"expect_banner": "ESMTP"}, 3)
        bad = await probe_tcp(f"127.0.0.1:{port}", {"expect_banner": "IMAP"}, 3)
    assert good.ok and good.details["banner"].startswith("220")
    assert not bad.ok and "IMAP" in (bad.error or "")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = await probe_tcp(f"127.0.0.1:{port}", {}, 3)
    assert not refused.ok and refused.error == "connection refused"


async def test_dns_answers_rcode_and_expected_values() -> None:
    async with serve_dns() as port:
        resolver = {"resolver": f"127.0.0.1:{port}"}
        found = await probe_dns("app.test", {**resolver, "expected": ["192.0.2.10"]}, 3)
        wrong = await probe_dns("app.test", {**resolver, "expected": ["192.0.2.99"]}, 3)
        missing = await probe_dns("nothing.test", resolver, 3)
        wanted_missing = await probe_dns(
            "nothing.test", {**resolver, "expected_rcode": "NXDOMAIN"}, 3
        )
        txt = await probe_dns("app.test", {**resolver, "record_type": "TXT"}, 3)
    assert found.ok and found.details["answers"] == ["192.0.2.10", "192.0.2.11"]
    assert not wrong.ok and "192.0.2.99" in (wrong.error or "")
    assert not missing.ok and missing.facts["DNS_RCODE"] == "NXDOMAIN"
    assert wanted_missing.ok
    assert txt.ok and txt.details["answers"] == ["v=ok"]


async def test_dns_without_an_answer_times_out_with_a_message() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        result = await probe_dns(
            "app.test", {"resolver": f"127.0.0.1:{silent.getsockname()[1]}"}, 0.5
        )
    finally:
        silent.close()
    assert not result.ok and "no answer" in (result.error or "")


def _ping_group_range() -> tuple[int, int]:
    low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    return low, high


def _ping_allowed() -> bool:
    low, high = _ping_group_range()
    return os.geteuid() == 0 or low <= os.getegid() <= high


async def test_ping_of_loopback_reports_rtt_and_loss() -> None:
    result = await probe_ping("127.0.0.1", {"count": 2, "interval_seconds": 0.05}, 3)
    if not _ping_allowed():
        assert result.error == SYSCTL_HINT
        return
    assert result.ok, result.error
    assert result.details["packet_loss_percent"] == 0.0
    assert result.details["received"] == 2


async def test_ping_forbidden_by_the_kernel_names_the_sysctl(tmp_path: Path) -> None:
    """Run the probe as an unprivileged user outside ping_group_range."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")  # CI runs as root
    low, high = _ping_group_range()
    if low <= 65534 <= high:
        pytest.skip("the kernel allows unprivileged ping for nogroup here")
    script = (
        "import asyncio\n"
        "from infrawatch.probes.ping import probe_ping\n"
        "print(asyncio.run(probe_ping('127.0.0.1', {'count': 1}, 2)).error)\n"
    )
    import sys

    process = await asyncio.create_subprocess_exec(
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    out, err = await process.communicate()
    assert "net.ipv4.ping_group_range" in out.decode(), err.decode()


class _NoLogin(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True


async def test_ssh_reads_banner_and_host_key_fingerprint() -> None:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        _NoLogin, "127.0.0.1", 0, server_host_keys=[host_key], server_version="InfraWatchTest_1.0"
    )
    port = server.sockets[0].getsockname()[1]
    try:
        result = await probe_ssh(f"127.0.0.1:{port}", {}, 5)
        expected = host_key.get_fingerprint("sha256")
        pinned = await probe_ssh(f"127.0.0.1:{port}", {"expected_fingerprint": expected}, 5)
        changed = await probe_ssh(
            f"127.0.0.1:{port}", {"expected_fingerprint": "SHA256:somethingelse"}, 5
        )
    finally:
        server.close()
        await server.wait_closed()
    assert result.ok, result.error
    assert result.details["banner"] == "SSH-2.0-InfraWatchTest_1.0"
    assert result.details["host_key"]["fingerprint"] == expected
    assert pinned.ok
    assert not changed.ok and expected in (changed.error or "")
