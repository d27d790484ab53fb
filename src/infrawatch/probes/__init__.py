"""Probes: one coroutine per monitor type, each returning a ProbeResult.
The monitoring engine and the validation tools use the same probes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infrawatch.core.neterrors import describe_os_error

__all__ = ["ProbeResult", "Stopwatch", "describe_os_error", "split_host_port"]


@dataclass
class ProbeResult:
    ok: bool
    latency_ms: float
    error: str | None = None
    status_code: int | None = None
    # What conditions can test: STATUS, BODY, CERTIFICATE_EXPIRATION ...
    facts: dict[str, Any] = field(default_factory=dict)
    # What a person wants to see about this one check: timings, hops, cert.
    details: dict[str, Any] = field(default_factory=dict)
    cert_expires_at: datetime | None = None

    @classmethod
    def failed(cls, error: str, latency_ms: float, **facts: Any) -> ProbeResult:
        """A check that got no answer to judge: not connected, no response."""
        return cls(
            ok=False,
            latency_ms=latency_ms,
            error=error,
            facts={"CONNECTED": False, "RESPONSE_TIME": latency_ms, **facts},
        )

    def fail(self, error: str) -> ProbeResult:
        self.ok = False
        self.error = self.error or error
        return self


class Stopwatch:
    """Milliseconds since it was made, from a monotonic clock."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


def split_host_port(target: str, default_port: int) -> tuple[str, int]:
    """host, host:port, [v6]:port, or a bare v6 address."""
    target = target.strip()
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif target.count(":") == 1:
        host, _, port = target.partition(":")
    else:
        host, port = target, ""
    if not host:
        raise ValueError("the target has no host")
    if port:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{port!r} is not a port (1-65535)")
        return host, int(port)
    return host, default_port
