"""TCP, TLS and SSH probes: a connection, and what the peer says first."""

from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import datetime
from typing import Any

import asyncssh

from infrawatch.probes import ProbeResult, Stopwatch, describe_os_error, split_host_port
from infrawatch.probes.certs import certificate_facts, describe_certificate, peer_der

BANNER_BYTES = 1024


async def probe_tcp(target: str, settings: dict[str, Any], timeout: float) -> ProbeResult:
    host, port = split_host_port(target, 0)
    watch = Stopwatch()
    result = ProbeResult(ok=True, latency_ms=0.0)
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            result.latency_ms = watch.ms()
            result.facts["IP"] = writer.get_extra_info("peername")[0]
            expected = settings.get("expect_banner")
            if expected:
                banner = (await reader.read(BANNER_BYTES)).decode(errors="replace").strip()
                result.facts["BANNER"] = banner
                result.details["banner"] = banner
                if expected not in banner:
                    result.fail(f"banner {banner[:80]!r} does not contain {expected!r}")
    except TimeoutError:
        result.fail(f"timed out after {timeout:g} s")
    except OSError as exc:
        result.fail(describe_os_error(exc))
    finally:
        if writer is not None:
            writer.close()
    result.latency_ms = result.latency_ms or watch.ms()
    result.facts["CONNECTED"] = writer is not None
    result.facts["RESPONSE_TIME"] = result.latency_ms
    return result


async def probe_tls(target: str, settings: dict[str, Any], timeout: float) -> ProbeResult:
    """Connects without verification to read the certificate whatever its
    state, then judges the chain and the name itself, so an expired or
    wrongly named certificate still reports its expiry."""
    host, port = split_host_port(target, 443)
    server_name = settings.get("server_name") or host
    watch = Stopwatch()
    result = ProbeResult(ok=True, latency_ms=0.0)
    try:
        async with asyncio.timeout(timeout):
            der = await _fetch_certificate(host, port, server_name)
            result.latency_ms = watch.ms()
            result.facts["CONNECTED"] = True
            verification = await _verify_chain(host, port, server_name)
    except TimeoutError:
        return _closed(result.fail(f"timed out after {timeout:g} s"), watch)
    except ssl.SSLError as exc:
        return _closed(result.fail(f"TLS handshake failed: {exc.reason or exc}"), watch)
    except OSError as exc:
        return _closed(result.fail(describe_os_error(exc)), watch)
    facts = certificate_facts(der)
    result.cert_expires_at = datetime.fromisoformat(facts["not_after"])
    result.details["certificate"] = {**facts, "chain_valid": verification is None}
    result.details["certificate"]["verification_error"] = verification
    result.facts["CERTIFICATE_EXPIRATION"] = facts["expires_in_ms"]
    result.facts["RESPONSE_TIME"] = result.latency_ms
    hostname_ok = _hostname_matches(der, server_name)
    result.details["certificate"]["hostname_match"] = hostname_ok
    if facts["expires_in_ms"] <= 0:
        result.fail(f"certificate expired on {facts['not_after']}")
    elif not hostname_ok:
        result.fail(f"certificate does not match {server_name} (names: {facts['sans']})")
    elif verification and settings.get("verify_chain", True):
        result.fail(f"certificate chain does not verify: {verification}")
    return result


def _closed(result: ProbeResult, watch: Stopwatch) -> ProbeResult:
    result.latency_ms = watch.ms()
    result.facts["CONNECTED"] = False
    result.facts["RESPONSE_TIME"] = result.latency_ms
    return result


async def _fetch_certificate(host: str, port: int, server_name: str) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_name)
    try:
        der = peer_der(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()
    if der is None:
        raise ssl.SSLError("the server sent no certificate")
    return der


async def _verify_chain(host: str, port: int, server_name: str) -> str | None:
    """None if the chain verifies against the system's trust store."""
    context = ssl.create_default_context()
    context.check_hostname = False  # judged separately, with a clearer message
    try:
        _, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=server_name
        )
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc)
    writer.close()
    return None


async def _connect_and_peek_banner(host: str, port: int) -> tuple[socket.socket, str]:
    """One connection for both: the banner is peeked, not read, so asyncssh
    still sees it when it takes the socket over for the handshake."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, address)
        readable = asyncio.Event()
        loop.add_reader(sock.fileno(), readable.set)
        try:
            await readable.wait()
        finally:
            loop.remove_reader(sock.fileno())
        peeked = sock.recv(BANNER_BYTES, socket.MSG_PEEK)
    except BaseException:
        sock.close()
        raise
    return sock, peeked.split(b"\n", 1)[0].decode(errors="replace").strip()


def _hostname_matches(der: bytes, server_name: str) -> bool:
    info = describe_certificate(der)
    names = info["sans"] or [info["subject"]]
    for name in names:
        if name == server_name or (
            name.startswith("*.")
            and server_name.count(".") == name.count(".")
            and server_name.endswith(name[1:])
        ):
            return True
    return False


async def probe_ssh(target: str, settings: dict[str, Any], timeout: float) -> ProbeResult:
    """TCP plus the SSH handshake up to the server's host key: no login."""
    host, port = split_host_port(target, 22)
    watch = Stopwatch()
    result = ProbeResult(ok=True, latency_ms=0.0)
    try:
        async with asyncio.timeout(timeout):
            sock, banner = await _connect_and_peek_banner(host, port)
            result.facts["BANNER"] = banner
            result.details["banner"] = banner
            key = await asyncssh.get_server_host_key(sock=sock)
    except TimeoutError:
        return _closed(result.fail(f"timed out after {timeout:g} s"), watch)
    except OSError as exc:
        return _closed(result.fail(describe_os_error(exc)), watch)
    except asyncssh.Error as exc:
        return _closed(result.fail(f"SSH handshake failed: {exc.reason}"), watch)
    result.latency_ms = watch.ms()
    result.facts.update({"CONNECTED": True, "RESPONSE_TIME": result.latency_ms})
    if key is None:
        return result.fail("the server offered no host key")
    fingerprint = key.get_fingerprint("sha256")
    result.details["host_key"] = {"type": key.get_algorithm(), "fingerprint": fingerprint}
    expected = settings.get("expected_fingerprint")
    if expected and expected != fingerprint:
        result.fail(f"host key changed: expected {expected}, got {fingerprint}")
    return result
