"""The validation tools: IP, hostname, TCP, HTTP and TLS checks on demand.
The network ones call the monitoring engine's probes (one implementation),
with a bounded timeout, and answer in the probes' own terms."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

from infrawatch.core.neterrors import describe_os_error
from infrawatch.discovery.schemas import (
    HostnameRequest,
    HostnameResult,
    HttpRequest,
    IpResult,
    ProbeOut,
    TcpRequest,
    TlsRequest,
)
from infrawatch.inventory.schemas import normalize_hostname
from infrawatch.probes import ProbeResult
from infrawatch.probes.http import HttpClient, probe_http
from infrawatch.probes.net import probe_tcp, probe_tls


def classify(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """One word, most specific first (loopback is also "private" to Python)."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        # Documentation ranges and the like count as private in Python;
        # they are reserved, not somebody's LAN.
        return "reserved" if address.is_reserved or _is_documentation(address) else "private"
    if address.is_reserved:
        return "reserved"
    if address.is_global:
        return "public"
    return "reserved"


_DOCUMENTATION = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


def _is_documentation(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in net for net in _DOCUMENTATION if net.version == address.version)


def validate_ip(value: str) -> IpResult:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return IpResult(value=value, valid=False, error="not a valid IPv4 or IPv6 address")
    return IpResult(
        value=value,
        valid=True,
        version=address.version,
        normalized=address.compressed,
        classification=classify(address),
        reverse_pointer=address.reverse_pointer,
    )


async def validate_hostname(request: HostnameRequest) -> HostnameResult:
    try:
        name = normalize_hostname(request.value)
    except ValueError as exc:
        return HostnameResult(value=request.value, valid=False, error=str(exc))
    result = HostnameResult(value=name, valid=True)
    if not request.resolve:
        return result
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(request.timeout):
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        result.resolution_error = f"timed out after {request.timeout:g} s"
    except OSError as exc:
        result.resolution_error = describe_os_error(exc)
    else:
        for family, *_, sockaddr in infos:
            bucket = result.a if family == socket.AF_INET else result.aaaa
            if sockaddr[0] not in bucket:
                bucket.append(str(sockaddr[0]))
    result.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return result


def _out(result: ProbeResult) -> ProbeOut:
    return ProbeOut(
        ok=result.ok,
        latency_ms=round(result.latency_ms, 3),
        error=result.error,
        status_code=result.status_code,
        details={**result.details, "ip": result.facts.get("IP")}
        if result.facts.get("IP")
        else result.details,
    )


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def validate_tcp(request: TcpRequest) -> ProbeOut:
    return _out(await probe_tcp(_target(request.host, request.port), {}, request.timeout))


async def validate_http(request: HttpRequest) -> ProbeOut:
    settings = {
        "method": request.method,
        "follow_redirects": request.follow_redirects,
        "verify_tls": request.verify_tls,
        # Any status is an answer here: the tool reports it, it does not judge it.
        "accepted_status_codes": ["100-599"],
    }
    async with HttpClient() as client:
        result = await probe_http(client, request.url, settings, request.timeout)
    return _out(result)


async def validate_tls(request: TlsRequest) -> ProbeOut:
    settings = {"server_name": request.server_name} if request.server_name else {}
    return _out(await probe_tls(_target(request.host, request.port), settings, request.timeout))
