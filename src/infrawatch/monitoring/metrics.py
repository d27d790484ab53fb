"""Prometheus metrics of monitoring: what every replica can read from the
database (status, certificate days, latency percentiles of the last hour)
and what the engine in this process counts (checks, lateness, per-monitor
latency histograms, write queue)."""

from __future__ import annotations

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
from infrawatch.monitoring.rollups import LATENCY_BOUNDS_MS, Bucket, percentile
from infrawatch.monitoring.service import display_status
from infrawatch.monitoring.stats import LATENESS_BOUNDS

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


class MonitoringCollector:
    def __init__(self, shot: MonitorSnapshot, engine: Any | None) -> None:
        self.shot = shot
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        labels = ["monitor_id", "name", "type"]
        status = GaugeMetricFamily(
            "infrawatch_monitor_status",
            "1 for the monitor's current status",
            labels=[*labels, "status"],
        )
        up = GaugeMetricFamily(
            "infrawatch_monitor_up", "1 if up or degraded, 0 otherwise", labels=labels
        )
        # Seconds, as Prometheus wants base units; the dashboard shows days.
        cert = GaugeMetricFamily(
            "infrawatch_monitor_certificate_expires_in_seconds",
            "time until the certificate expires",
            labels=labels,
        )
        p50 = GaugeMetricFamily(
            "infrawatch_monitor_latency_p50_seconds",
            "median latency over the last hour",
            labels=labels,
        )
        p95 = GaugeMetricFamily(
            "infrawatch_monitor_latency_p95_seconds",
            "95th percentile latency, last hour",
            labels=labels,
        )
        if not self.shot.monitors:  # a worker: only what its engine counted
            yield from engine_metrics(self.engine) if self.engine is not None else ()
            return
        for monitor_id, name, kind, current, days in self.shot.monitors:
            values = [monitor_id, name, kind]
            for candidate in STATUSES:
                status.add_metric([*values, candidate], 1.0 if candidate == current else 0.0)
            up.add_metric(values, 1.0 if current in ("up", "degraded") else 0.0)
            if days is not None:
                cert.add_metric(values, round(days * 86400))
            latency = self.shot.latency.get(monitor_id)
            if latency and latency[0] is not None:
                p50.add_metric(values, latency[0] / 1000)
            if latency and latency[1] is not None:
                p95.add_metric(values, latency[1] / 1000)
        yield from (status, up, cert, p50, p95)
        if self.engine is not None:
            yield from engine_metrics(self.engine)


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
    histogram = HistogramMetricFamily(
        "infrawatch_monitor_latency_seconds",
        "check latency per monitor, counted by the process that checks it",
        labels=["monitor_id", "name", "type"],
    )
    latency_bounds = [str(b / 1000) for b in LATENCY_BOUNDS_MS] + ["+Inf"]
    # This runs in a thread while the engine's loop adds and drops monitors:
    # list() copies the values in one step under the GIL; iterating the dict
    # itself failed with "dictionary changed size during iteration" (a 500
    # from a worker's /metrics at 50,000 monitors).
    for tracked in list(engine.tracked.values()):
        if not tracked.latency_count:
            continue
        spec = tracked.spec
        histogram.add_metric(
            [str(spec.id), spec.name, spec.type],
            _cumulative(latency_bounds, tracked.latency_buckets),
            sum_value=tracked.latency_sum / 1000,
        )
    yield histogram


def _cumulative(bounds: list[str], counts: list[int]) -> list[tuple[str, float]]:
    total, buckets = 0, []
    for bound, count in zip(bounds, counts, strict=True):
        total += count
        buckets.append((bound, float(total)))
    return buckets
