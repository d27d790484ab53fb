"""The network side of a discovery scan: TCP connect probes (the monitoring
engine's probe) under a concurrency cap and a rate limit, then, for hosts
that answered, reverse DNS, SSH and HTTP banners and an OS guess."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from infrawatch.probes.certs import client_context
from infrawatch.probes.net import probe_tcp

BANNER_WAIT = 0.5
HTTPS_PORTS = frozenset({443, 8443})


def addresses_of(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Iterator[str]:
    """Usable host addresses: a /24 is 254 hosts; /31, /32 (and v6 /127,
    /128) are all of their addresses."""
    if network.num_addresses <= 2:
        return (str(a) for a in network)
    return (str(a) for a in network.hosts())


class RateLimiter:
    """At most `rate` starts per second, spread evenly (no bursts)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(self._next, now) + self.interval


@dataclass
class Finding:
    address: str
    open_ports: list[int] = field(default_factory=list)
    latency_ms: float | None = None
    reverse_dns: str | None = None
    ssh_banner: str | None = None
    ssh_port: int | None = None
    http_banner: str | None = None
    os_guess: str | None = None


@dataclass
class ScanLimits:
    concurrency: int
    rate_per_second: int
    timeout: float


class Scanner:
    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._rate = RateLimiter(limits.rate_per_second)
        self.probes = 0

    async def _port_open(self, address: str, port: int) -> float | None:
        await self._rate.wait()
        async with self._slots:
            self.probes += 1
            target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            result = await probe_tcp(target, {}, self.limits.timeout)
        return result.latency_ms if result.ok else None

    async def host(self, address: str, ports: list[int]) -> Finding | None:
        latencies = await asyncio.gather(*(self._port_open(address, p) for p in ports))
        open_ports = [p for p, ms in zip(ports, latencies, strict=True) if ms is not None]
        if not open_ports:
            return None
        finding = Finding(
            address=address,
            open_ports=open_ports,
            latency_ms=round(min(ms for ms in latencies if ms is not None), 3),
        )
        finding.reverse_dns = await reverse_dns(address, self.limits.timeout)
        for port in open_ports:
            await self._identify(finding, port)
        finding.os_guess = guess_os(finding.ssh_banner)
        return finding

    async def _identify(self, finding: Finding, port: int) -> None:
        """A server that speaks first (SSH) is heard within BANNER_WAIT;
        one that waits is asked an HTTP HEAD."""
        async with self._slots:
            if port not in HTTPS_PORTS and finding.ssh_banner is None:
                first = await read_greeting(finding.address, port, self.limits.timeout)
                if first is not None:
                    if first.startswith("SSH-"):
                        finding.ssh_banner, finding.ssh_port = first[:255], port
                    return
            if finding.http_banner is None:
                finding.http_banner = await http_banner(
                    finding.address, port, port in HTTPS_PORTS, self.limits.timeout
                )


async def reverse_dns(address: str, timeout: float) -> str | None:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            name, _ = await loop.getnameinfo((address, 0), socket.NI_NAMEREQD)
    except (TimeoutError, OSError):
        return None
    return name.rstrip(".") or None


async def read_greeting(address: str, port: int, timeout: float) -> str | None:
    writer = None
    try:
        async with asyncio.timeout(timeout + BANNER_WAIT):
            reader, writer = await asyncio.open_connection(address, port)
            try:
                async with asyncio.timeout(BANNER_WAIT):
                    line = await reader.readline()
            except TimeoutError:
                return None
    except (TimeoutError, OSError):
        return None
    finally:
        if writer is not None:
            writer.close()
    return line.decode(errors="replace").strip() or None


async def http_banner(address: str, port: int, tls: bool, timeout: float) -> str | None:
    """`HTTP/1.1 200 OK; nginx/1.22.1`: the status line and Server header."""
    writer = None
    host = f"[{address}]" if ":" in address else address
    try:
        async with asyncio.timeout(timeout + BANNER_WAIT):
            reader, writer = await asyncio.open_connection(
                address, port, ssl=client_context(False) if tls else None
            )
            writer.write(
                f"HEAD / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: InfraWatch\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.read(4096)
    except (TimeoutError, OSError):
        return None
    finally:
        if writer is not None:
            writer.close()
    lines = head.decode(errors="replace").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None
    server = next(
        (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("server:")), None
    )
    return (lines[0] + (f"; {server}" if server else ""))[:255]


_DEBIAN = re.compile(r"deb(\d+)u\d+|Debian-\d+\+deb(\d+)")
_UBUNTU_BY_OPENSSH = {
    "8.2": "20.04",
    "8.9": "22.04",
    "9.3": "23.04",
    "9.6": "24.04",
    "9.9": "25.04",
}
_DEBIAN_BY_OPENSSH = {"7.9": "10", "8.4": "11", "9.2": "12", "10.0": "13"}


def guess_os(ssh_banner: str | None) -> str | None:
    """What the SSH server says about its build: Debian and Ubuntu patch
    their version strings, others name themselves."""
    if not ssh_banner:
        return None
    banner = ssh_banner
    version = re.search(r"OpenSSH_(\d+\.\d+)", banner)
    openssh = version.group(1) if version else None
    if "Ubuntu" in banner or "ubuntu" in banner:
        release = _UBUNTU_BY_OPENSSH.get(openssh or "")
        return f"Ubuntu {release}" if release else "Ubuntu"
    if "Debian" in banner:
        match = _DEBIAN.search(banner)
        release = next((g for g in match.groups() if g), None) if match else None
        release = release or _DEBIAN_BY_OPENSSH.get(openssh or "")
        return f"Debian {release}" if release else "Debian"
    for marker, name in (
        ("FreeBSD", "FreeBSD"),
        ("OpenBSD", "OpenBSD"),
        ("NetBSD", "NetBSD"),
        ("for_Windows", "Windows"),
        ("ROSSSH", "MikroTik RouterOS"),
        ("Cisco", "Cisco IOS"),
        ("dropbear", "Linux (Dropbear, embedded)"),
        ("Raspbian", "Raspberry Pi OS"),
    ):
        if marker.lower() in banner.lower():
            return name
    if openssh:
        return "Unix-like (OpenSSH)"
    return None
