"""ICMP echo through icmplib. Unprivileged datagram sockets where the kernel
allows them (net.ipv4.ping_group_range); as root, raw sockets otherwise."""

from __future__ import annotations

import os
from typing import Any

from icmplib import async_ping
from icmplib.exceptions import ICMPLibError, NameLookupError, SocketPermissionError

from infrawatch.probes import ProbeResult, Stopwatch

SYSCTL_HINT = (
    "this process may not send ICMP echo: the kernel allows unprivileged ping only to "
    "groups in net.ipv4.ping_group_range (e.g. sysctl -w net.ipv4.ping_group_range='0 "
    "2147483647'), or run as root"
)


async def probe_ping(target: str, settings: dict[str, Any], timeout: float) -> ProbeResult:
    count = int(settings.get("count", 3))
    interval = float(settings.get("interval_seconds", 0.2))
    per_packet = max(0.1, min(timeout, timeout - interval * (count - 1)))
    watch = Stopwatch()
    try:
        host = await _ping(target, count, interval, per_packet, privileged=False)
    except SocketPermissionError:
        if os.geteuid() != 0:
            return _failed(SYSCTL_HINT, watch)
        try:
            host = await _ping(target, count, interval, per_packet, privileged=True)
        except SocketPermissionError:
            return _failed(SYSCTL_HINT, watch)
        except ICMPLibError as exc:
            return _failed(_describe(exc), watch)
    except ICMPLibError as exc:
        return _failed(_describe(exc), watch)
    except OSError as exc:
        return _failed(f"ping failed: {exc.strerror or exc}", watch)
    loss = round(host.packet_loss * 100, 1)
    latency = host.avg_rtt if host.is_alive else watch.ms()
    result = ProbeResult(
        ok=host.is_alive,
        latency_ms=round(latency, 3),
        facts={
            "CONNECTED": host.is_alive,
            "RESPONSE_TIME": round(latency, 3),
            "PACKET_LOSS": loss,
            "IP": host.address,
        },
        details={
            "sent": host.packets_sent,
            "received": host.packets_received,
            "packet_loss_percent": loss,
            "rtt_ms": {"min": host.min_rtt, "avg": host.avg_rtt, "max": host.max_rtt},
        },
    )
    if not host.is_alive:
        result.error = f"no echo reply ({host.packets_sent} sent, 100% loss)"
    return result


async def _ping(
    target: str, count: int, interval: float, timeout: float, *, privileged: bool
) -> Any:
    return await async_ping(
        target, count=count, interval=interval, timeout=timeout, privileged=privileged
    )


def _describe(exc: ICMPLibError) -> str:
    if isinstance(exc, NameLookupError):
        return f"DNS failure: {exc}"
    return f"ping failed: {exc}"


def _failed(message: str, watch: Stopwatch) -> ProbeResult:
    return ProbeResult.failed(message, watch.ms(), PACKET_LOSS=100.0)
