"""The host agent's side on the server: per-server tokens (hashed), the
report endpoint's work, rollups of host figures, and how an agent monitor
judges the latest report.

A report is stored as the server's latest reading and added to its 5 min,
hour and day buckets; the server's agent monitors are then checked at once
(through the same path as a push ping), so a threshold crossed shows
within a second, and silence is DOWN after period + grace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.clock import as_utc, utcnow
from infrawatch.core.db import stage_event
from infrawatch.core.errors import Unauthorized
from infrawatch.core.events import Event
from infrawatch.credentials import agent_tokens as credential_agent_tokens
from infrawatch.inventory import service as inventory
from infrawatch.monitoring import repository
from infrawatch.monitoring.models import AgentReport
from infrawatch.monitoring.push import judge_push, push_state
from infrawatch.monitoring.schemas import AgentReportIn
from infrawatch.probes import ProbeResult
from infrawatch.probes.host_figures import disk_max, load_per_core, thresholds

# Pseudo filesystems say nothing about space running out (the agent skips
# them too: infrawatch.agent.readings).
PERIODS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
REPORT_EVERY_SECONDS = 30


def bucket_start(at: datetime, period: str) -> datetime:
    step = PERIODS[period]
    epoch = datetime(2000, 1, 1, tzinfo=at.tzinfo)
    return epoch + ((at - epoch) // step) * step


async def record_report(session: AsyncSession, token: str, report: AgentReportIn) -> uuid.UUID:
    owner = await credential_agent_tokens.agent_token_owner(session, token)
    if owner is None:
        raise Unauthorized("no server has this agent token")
    now = utcnow()
    readings = report.model_dump()
    latest = await repository.agent_report(session, owner, lock=True)
    moved = 0
    if latest is None:
        session.add(AgentReport(server_id=owner, at=now, readings=readings))
    else:
        before, after = latest.readings.get("network", {}), readings["network"]
        grown = sum(after[k] - before.get(k, 0) for k in ("bytes_sent", "bytes_received"))
        moved = max(grown, 0)  # counters start again after a reboot
        latest.at, latest.readings = now, readings
    figures = _figures(readings, moved)
    await repository.add_to_host_rollups(
        session,
        [
            {"server_id": owner, "period": period, "start": bucket_start(now, period), **figures}
            for period in PERIODS
        ],
    )
    for monitor_id in await repository.agent_monitor_ids(session, owner):
        # The engine checks a push-like monitor when told; an agent's too.
        stage_event(session, Event("monitoring.push", {"id": str(monitor_id), "kind": "agent"}))
    return owner


def _figures(readings: dict[str, Any], moved: int) -> dict[str, Any]:
    """One report as a bucket row's figures (the bucket adds and keeps maxima)."""
    cpu = float(readings["cpu_percent"])
    memory = float(readings["memory"]["percent"])
    load = load_per_core(readings)
    return {
        "reports": 1,
        "cpu_sum": cpu,
        "cpu_max": cpu,
        "memory_sum": memory,
        "memory_max": memory,
        "disk_max": disk_max(readings),
        "load_sum": load,
        "load_max": load,
        "network_bytes": moved,
    }


async def host_metrics(
    session: AsyncSession, server_id: uuid.UUID, period: str, since: datetime
) -> list[dict[str, Any]]:
    rows = await repository.host_rollups(session, server_id, period, since)
    return [
        {
            "start": as_utc(r.start),
            "reports": r.reports,
            "cpu_avg": round(r.cpu_sum / r.reports, 1) if r.reports else None,
            "cpu_max": r.cpu_max,
            "memory_avg": round(r.memory_sum / r.reports, 1) if r.reports else None,
            "memory_max": r.memory_max,
            "disk_max": r.disk_max,
            "load_per_core_avg": round(r.load_sum / r.reports, 3) if r.reports else None,
            "load_per_core_max": r.load_max,
            "network_bytes": r.network_bytes,
        }
        for r in rows
    ]


async def latest(
    session: AsyncSession, server_id: uuid.UUID
) -> tuple[datetime, dict[str, Any]] | None:
    report = await repository.agent_report(session, server_id)
    return (as_utc(report.at), report.readings) if report else None


# --- judging ----------------------------------------------------------------------


@dataclass(frozen=True)
class AgentState:
    created_at: datetime
    report_at: datetime | None
    readings: dict[str, Any] | None
    settings: dict[str, Any]


def judge_agent(state: AgentState, now: datetime) -> ProbeResult | None:
    period = int(state.settings.get("period_seconds", REPORT_EVERY_SECONDS))
    grace = int(state.settings.get("grace_seconds", 60))
    allowed = period + grace
    if state.report_at is None or state.readings is None:
        silent = (now - state.created_at).total_seconds()
        return _down(f"no agent report in {silent:.0f} s") if silent > allowed else None
    silent = (now - as_utc(state.report_at)).total_seconds()
    if silent > allowed:
        return _down(f"no agent report for {silent:.0f} s (period {period} s + grace {grace} s)")
    facts, breaches = thresholds(state.readings, state.settings)
    readings = state.readings
    details = {
        "reported_at": as_utc(state.report_at).isoformat(),
        "hostname": readings.get("hostname"),
        "figures": {k: v for k, v in facts.items() if k != "RESPONSE_TIME"},
    }
    if breaches:
        return ProbeResult(
            ok=False, latency_ms=0.0, error="; ".join(breaches), facts=facts, details=details
        )
    return ProbeResult(ok=True, latency_ms=0.0, facts=facts, details=details)


async def judge_received(session: AsyncSession, row: Any, now: datetime) -> ProbeResult | None:
    """A push or agent monitor: judged from what was sent, not by reaching out."""
    if row.type != "agent":
        return judge_push(push_state(row), now)
    report = await repository.agent_report(session, row.server_id) if row.server_id else None
    state = AgentState(
        created_at=row.created_at,
        report_at=report.at if report else None,
        readings=report.readings if report else None,
        settings=row.settings or {},
    )
    return judge_agent(state, now)


def _down(message: str) -> ProbeResult:
    return ProbeResult(ok=False, latency_ms=0.0, error=message, facts={"RESPONSE_TIME": 0.0})


# --- /metrics ---------------------------------------------------------------------


@dataclass(frozen=True)
class HostSnapshot:
    server_id: str
    server: str
    at: datetime
    readings: dict[str, Any]


async def host_snapshot(session: AsyncSession) -> list[HostSnapshot]:
    reports = await repository.latest_agent_reports(session)
    names: dict[uuid.UUID, str] = {}
    ids = [r.server_id for r in reports]
    for start in range(0, len(ids), 500):
        for server in await inventory.servers_by_ids(session, ids[start : start + 500]):
            names[server.id] = server.name
    return [
        HostSnapshot(str(r.server_id), names[r.server_id], as_utc(r.at), r.readings)
        for r in reports
        if r.server_id in names  # a purged server's last report is not exported
    ]


class HostCollector:
    """The latest value of every host figure the agents report."""

    def __init__(self, hosts: list[HostSnapshot]) -> None:
        self.hosts = hosts

    def collect(self) -> Iterator[Metric]:
        labels = ["server_id", "server"]
        gauges = {
            "cpu_percent": GaugeMetricFamily(
                "infrawatch_host_cpu_percent", "CPU busy, percent", labels=labels
            ),
            "memory_percent": GaugeMetricFamily(
                "infrawatch_host_memory_percent", "Memory used, percent", labels=labels
            ),
            "swap_percent": GaugeMetricFamily(
                "infrawatch_host_swap_percent", "Swap used, percent", labels=labels
            ),
            "load_per_core": GaugeMetricFamily(
                "infrawatch_host_load_per_core", "1-minute load over CPU count", labels=labels
            ),
            "uptime_seconds": GaugeMetricFamily(
                "infrawatch_host_uptime_seconds", "Seconds since boot", labels=labels
            ),
            "processes": GaugeMetricFamily(
                "infrawatch_host_processes", "Processes running", labels=labels
            ),
            "report_age_seconds": GaugeMetricFamily(
                "infrawatch_host_report_age_seconds",
                "Seconds since the agent last reported",
                labels=labels,
            ),
        }
        disk = GaugeMetricFamily(
            "infrawatch_host_disk_used_percent",
            "Disk used per mount, percent",
            labels=[*labels, "mount"],
        )
        network = CounterMetricFamily(
            "infrawatch_host_network_bytes",
            "Bytes through the host's interfaces",
            labels=[*labels, "direction"],
        )
        now = utcnow()
        for host in self.hosts:
            values = [host.server_id, host.server]
            r = host.readings
            gauges["cpu_percent"].add_metric(values, float(r["cpu_percent"]))
            gauges["memory_percent"].add_metric(values, float(r["memory"]["percent"]))
            gauges["swap_percent"].add_metric(values, float(r["swap"]["percent"]))
            gauges["load_per_core"].add_metric(values, load_per_core(r))
            gauges["uptime_seconds"].add_metric(values, float(r["uptime_seconds"]))
            gauges["processes"].add_metric(values, float(r["processes"]))
            gauges["report_age_seconds"].add_metric(values, (now - host.at).total_seconds())
            for d in r.get("disks", []):
                disk.add_metric([*values, d["mount"]], float(d["percent"]))
            network.add_metric([*values, "sent"], float(r["network"]["bytes_sent"]))
            network.add_metric([*values, "received"], float(r["network"]["bytes_received"]))
        yield from gauges.values()
        yield disk
        yield network
