"""Prometheus metrics of monitoring: what every replica can read from the
database (status, certificate days, latency percentiles of the last hour)
and what the engine in this process counts (checks, lateness, per-monitor
latency histograms, write queue).

The per-monitor series (a dozen lines each) are formatted here as text, a
slice at a time on the event loop: formatting them in a thread held the GIL
for seconds on every scrape, and the engine's checks on the same loop
started seconds late (seen at 50,000 monitors). Past
`INFRAWATCH_METRICS_PER_MONITOR_LIMIT` monitors they are left out (25,000
monitors made a 40 MB scrape) and the totals per status and per monitor
type say what the fleet does."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.clock import utcnow
from infrawatch.monitoring import repository
from infrawatch.monitoring.engine.stats import LATENESS_BOUNDS
from infrawatch.monitoring.rollups import LATENCY_BOUNDS_MS, Bucket, percentile
from infrawatch.monitoring.service import display_status

STATUSES = ("pending", "up", "degraded", "down", "paused", "maintenance")


@dataclass
class MonitorSnapshot:
    monitors: list[tuple[str, str, str, str, float | None]] = field(default_factory=list)
    latency: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


async def snapshot(session: AsyncSession) -> MonitorSnapshot:
    now = utcnow()
    shot = MonitorSnapshot()
    for monitor in await repository.all_monitors(session):
        days = None
        if monitor.cert_expires_at is not None:
            days = (monitor.cert_expires_at - now).total_seconds() / 86400
        shot.monitors.append(
            (str(monitor.id), monitor.name, monitor.type, display_status(monitor), days)
        )
    buckets: dict[str, Bucket] = {}
    for row in await repository.recent_rollups(session, 300, now - timedelta(hours=1)):
        buckets.setdefault(str(row.monitor_id), Bucket()).merge_row(row)
    for monitor_id, bucket in buckets.items():
        shot.latency[monitor_id] = (
            percentile(bucket.histogram, 0.5, bucket.latency_max),
            percentile(bucket.histogram, 0.95, bucket.latency_max),
        )
    return shot


class EngineCollector:
    """What this process's engine counted, apart from the per-monitor series."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        yield from engine_metrics(self.engine)


async def per_monitor_text(shot: MonitorSnapshot, engine: Any | None, limit: int = 1000) -> str:
    """The per-monitor families in the Prometheus text format, and how many
    monitors' series were left out for being more than `limit`."""
    parts: list[str] = []
    omitted = 0
    if shot.monitors:
        parts.extend(_status_totals(shot))
        if len(shot.monitors) <= limit:
            parts.extend(await _snapshot_series(shot))
        else:
            omitted = len(shot.monitors)
    if engine is not None:
        if len(engine.tracked) <= limit:
            parts.extend(await _latency_histograms(engine))
        else:
            omitted = max(omitted, len(engine.tracked))
    parts.extend(_family(OMITTED, "gauge", "monitors whose per-monitor series are left out"))
    parts.append(f"{OMITTED} {omitted}\n")
    return "".join(parts)


OMITTED = "infrawatch_metrics_per_monitor_omitted"


def _status_totals(shot: MonitorSnapshot) -> list[str]:
    counts = dict.fromkeys(STATUSES, 0)
    for _, _, _, current, _ in shot.monitors:
        counts[current] = counts.get(current, 0) + 1
    lines = _family("infrawatch_monitors", "gauge", "monitors per shown status")
    lines.extend(f'infrawatch_monitors{{status="{k}"}} {v}\n' for k, v in counts.items())
    return lines


async def _snapshot_series(shot: MonitorSnapshot) -> list[str]:
    families = {
        "status": _family(
            "infrawatch_monitor_status", "gauge", "1 for the monitor's current status"
        ),
        "up": _family("infrawatch_monitor_up", "gauge", "1 if up or degraded, 0 otherwise"),
        # Seconds, as Prometheus wants base units; the dashboard shows days.
        "cert": _family(
            "infrawatch_monitor_certificate_expires_in_seconds",
            "gauge",
            "time until the certificate expires",
        ),
        "p50": _family(
            "infrawatch_monitor_latency_p50_seconds", "gauge", "median latency over the last hour"
        ),
        "p95": _family(
            "infrawatch_monitor_latency_p95_seconds", "gauge", "95th percentile latency, last hour"
        ),
    }
    for index, (monitor_id, name, kind, current, days) in enumerate(shot.monitors):
        if index % SLICE == SLICE - 1:
            await asyncio.sleep(0)
        labels = monitor_labels(monitor_id, name, kind)
        status = families["status"]
        for candidate in STATUSES:
            value = 1 if candidate == current else 0
            status.append(f'infrawatch_monitor_status{{{labels},status="{candidate}"}} {value}\n')
        is_up = 1 if current in ("up", "degraded") else 0
        families["up"].append(f"infrawatch_monitor_up{{{labels}}} {is_up}\n")
        if days is not None:
            families["cert"].append(
                f"infrawatch_monitor_certificate_expires_in_seconds{{{labels}}} "
                f"{round(days * 86400)}\n"
            )
        latency = shot.latency.get(monitor_id)
        for key, latency_ms in zip(("p50", "p95"), latency or (), strict=False):
            if latency_ms is not None:
                families[key].append(
                    f"infrawatch_monitor_latency_{key}_seconds{{{labels}}} {latency_ms / 1000!r}\n"
                )
    return [line for family in families.values() for line in family]


SLICE = 500  # monitors formatted between two turns of the event loop
HISTOGRAM = "infrawatch_monitor_latency_seconds"


async def _latency_histograms(engine: Any) -> list[str]:
    lines = _family(
        HISTOGRAM, "histogram", "check latency per monitor, counted by the process that checks it"
    )
    bounds = [repr(b / 1000) for b in LATENCY_BOUNDS_MS] + ["+Inf"]
    # A copy: the loop adds and drops monitors between two slices.
    for index, tracked in enumerate(list(engine.tracked.values())):
        if index % SLICE == SLICE - 1:
            await asyncio.sleep(0)
        if not tracked.latency_count:
            continue
        spec = tracked.spec
        labels = monitor_labels(str(spec.id), spec.name, spec.type)
        total = 0
        for bound, count in zip(bounds, tracked.latency_buckets, strict=True):
            total += count
            lines.append(f'{HISTOGRAM}_bucket{{{labels},le="{bound}"}} {total}\n')
        lines.append(f"{HISTOGRAM}_count{{{labels}}} {total}\n")
        lines.append(f"{HISTOGRAM}_sum{{{labels}}} {tracked.latency_sum / 1000!r}\n")
    return lines


def _family(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}\n", f"# TYPE {name} {kind}\n"]


@functools.lru_cache(maxsize=200_000)
def monitor_labels(monitor_id: str, name: str, kind: str) -> str:
    return f'monitor_id="{monitor_id}",name="{_escape(name)}",type="{kind}"'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def engine_metrics(engine: Any) -> Iterator[Metric]:
    stats = engine.stats
    checks = CounterMetricFamily(
        "infrawatch_engine_checks", "checks finished by this process", labels=["outcome"]
    )
    for outcome, count in stats.outcomes.items():
        checks.add_metric([outcome], count)
    yield checks
    lateness = HistogramMetricFamily(
        "infrawatch_engine_lateness_seconds", "how late checks started against their schedule"
    )
    bounds = [str(b) for b in LATENESS_BOUNDS] + ["+Inf"]
    lateness.add_metric(
        [], _cumulative(bounds, stats.lateness_counts), sum_value=stats.lateness_sum
    )
    yield lateness
    lag = HistogramMetricFamily(
        "infrawatch_engine_loop_lag_seconds",
        "how late the event loop woke a 100 ms timer (time it was held up)",
    )
    lag.add_metric([], _cumulative(bounds, stats.loop_lag_counts), sum_value=stats.loop_lag_sum)
    yield lag
    by_type = HistogramMetricFamily(
        "infrawatch_engine_check_latency_seconds",
        "check latency of this process's checks, per monitor type",
        labels=["type"],
    )
    latency_bounds = [repr(b / 1000) for b in LATENCY_BOUNDS_MS] + ["+Inf"]
    for kind, counts in sorted(stats.latency_by_type.items()):
        by_type.add_metric(
            [kind],
            _cumulative(latency_bounds, counts),
            sum_value=stats.latency_sum_by_type[kind] / 1000,
        )
    yield by_type
    gauges = {
        "infrawatch_engine_checks_in_flight": ("checks running now", stats.queue_depth),
        "infrawatch_engine_monitors": ("monitors this process schedules", len(engine.tracked)),
        "infrawatch_engine_shards": ("shards this process leases", len(engine.leaser.owned)),
        "infrawatch_engine_write_queue": ("results waiting to be written", engine.writer.depth),
        "infrawatch_engine_lateness_max_seconds": ("worst lateness so far", stats.lateness_max),
        "infrawatch_engine_loop_lag_max_seconds": (
            "longest the event loop was held up",
            stats.loop_lag_max,
        ),
        "infrawatch_engine_gc_pause_max_seconds": (
            "longest garbage collection pause",
            stats.gc_pause_max,
        ),
    }
    for name, (text, value) in gauges.items():
        yield GaugeMetricFamily(name, text, value=value)
    counters = {
        "infrawatch_engine_shards_gained": ("shard leases taken", stats.shards_gained),
        "infrawatch_engine_shards_lost": ("shard leases given up or lost", stats.shards_lost),
        "infrawatch_engine_monitors_loaded": (
            "monitors loaded or reloaded from the database",
            stats.monitors_loaded,
        ),
        "infrawatch_engine_results_written": ("results committed", engine.writer.written_results),
        "infrawatch_engine_results_dropped": (
            "raw results dropped while the database was away",
            engine.writer.dropped_results,
        ),
        "infrawatch_engine_write_failures": (
            "batch writes that failed and were retried",
            engine.writer.failed_flushes,
        ),
    }
    for name, (text, value) in counters.items():
        yield CounterMetricFamily(name, text, value=value)


def _cumulative(bounds: list[str], counts: list[int]) -> list[tuple[str, float]]:
    total, buckets = 0, []
    for bound, count in zip(bounds, counts, strict=True):
        total += count
        buckets.append((bound, float(total)))
    return buckets
