"""One check of one monitor: the probe of its type, then its conditions and
its latency threshold. Shared by the engine and "check now"."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infrawatch.core.redaction import redact_userinfo
from infrawatch.monitoring import conditions, target_secrets
from infrawatch.monitoring.engine.state import Outcome
from infrawatch.probes import ProbeResult
from infrawatch.probes.dns import probe_dns
from infrawatch.probes.http import HttpClient, probe_http
from infrawatch.probes.net import probe_ssh, probe_tcp, probe_tls
from infrawatch.probes.node_exporter import probe_node_exporter
from infrawatch.probes.ping import probe_ping

# Push monitors are judged from what their pings wrote, which needs the
# database: the caller supplies the reader.
PushReader = Callable[[uuid.UUID], Awaitable[ProbeResult | None]]


@dataclass(frozen=True)
class MonitorSpec:
    """What the engine needs of a monitor, parsed once."""

    id: uuid.UUID
    name: str
    type: str
    target: str
    interval_seconds: int
    timeout_seconds: float
    retry_interval_seconds: int
    failure_threshold: int
    success_threshold: int
    degraded_threshold_ms: int | None
    conditions: tuple[conditions.Condition, ...]
    settings: dict[str, Any]
    server_id: uuid.UUID | None
    critical: bool
    shard: int
    version: int
    host: str  # for the per-host concurrency cap
    # The target's password (target has *** in its place): only the probe
    # sees it, and what the probe reports is redacted again.
    password: str | None = None
    # Checked from these locations, its state decided by quorum; empty:
    # from any one location, its state its own (monitoring/quorum.py).
    locations: tuple[str, ...] = ()
    quorum: int | None = None


@dataclass
class CheckOutcome:
    outcome: Outcome
    result: ProbeResult
    checked_at: datetime


async def run_check(
    spec: MonitorSpec,
    http: HttpClient,
    read_push: PushReader,
    checked_at: datetime,
) -> CheckOutcome | None:
    """None when there is nothing to judge yet (a push monitor waiting for
    its first ping)."""
    result = await _probe(spec, http, read_push)
    if result is None:
        return None
    if spec.password is not None:
        _redact(result)
    if result.ok:
        for condition in spec.conditions:
            holds, seen = condition.evaluate(result.facts)
            if not holds:
                result.fail(f"condition failed: {seen}")
                break
    outcome: Outcome = "down"
    if result.ok:
        slow = spec.degraded_threshold_ms is not None and (
            result.latency_ms > spec.degraded_threshold_ms
        )
        outcome = "degraded" if slow else "up"
        if slow:
            result.error = f"slower than {spec.degraded_threshold_ms} ms"
    return CheckOutcome(outcome, result, checked_at)


def _redact(result: ProbeResult) -> None:
    """The probe had the whole URL: errors and redirect hops may repeat it."""
    if result.error:
        result.error = redact_userinfo(result.error)
    for hop in result.details.get("hops", ()):
        if isinstance(hop.get("url"), str):
            hop["url"] = redact_userinfo(hop["url"])


async def _probe(spec: MonitorSpec, http: HttpClient, read_push: PushReader) -> ProbeResult | None:
    try:
        if spec.type == "http":
            target = target_secrets.with_password(spec.target, spec.password)
            return await probe_http(http, target, spec.settings, spec.timeout_seconds)
        if spec.type == "node_exporter":
            return await probe_node_exporter(http, spec.target, spec.settings, spec.timeout_seconds)
        if spec.type == "tcp":
            return await probe_tcp(spec.target, spec.settings, spec.timeout_seconds)
        if spec.type == "ping":
            return await probe_ping(spec.target, spec.settings, spec.timeout_seconds)
        if spec.type == "dns":
            return await probe_dns(spec.target, spec.settings, spec.timeout_seconds)
        if spec.type == "tls":
            return await probe_tls(spec.target, spec.settings, spec.timeout_seconds)
        if spec.type == "ssh":
            return await probe_ssh(spec.target, spec.settings, spec.timeout_seconds)
        if spec.type in ("push", "agent"):
            # Both are judged from what was sent to us, not by reaching out.
            return await read_push(spec.id)
    except ValueError as exc:  # a target that stopped parsing: the check fails, the engine lives
        return ProbeResult(ok=False, latency_ms=0.0, error=f"invalid target: {exc}")
    raise AssertionError(f"no probe for monitor type {spec.type!r}")
