"""Rollups: per monitor, per 5 minutes, hour and day, counts and latency
with a fixed-bucket histogram. The 5-minute ones are added up in memory per
write batch and upserted, raw results packed inside (samples.py), in the
same transaction as the transitions they go with: one upsert per result.
Hours and days are derived from them by a periodic job (derive.py)."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

LATENCY_BOUNDS_MS = (25, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000)  # + overflow
HISTOGRAM_COLUMNS = tuple(f"h{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
FIVE_MINUTES, HOUR, DAY = 300, 3600, 86400
GRANULARITIES = (FIVE_MINUTES, HOUR, DAY)
# How long each granularity is kept. The 5-minute buckets hold the raw
# results, so they live as long as those (the results retention, never
# under the 25 h the 24 h window reads); hourly ones serve the 7 day window
# and chart, daily ones everything longer. At 10,000 monitors checked every
# 30 s that is about 3 GB in all (docs/monitoring.md, "Storage"); hourly
# rows for 30 days would add 1.7 GB for a chart with 720 points instead of 30.
FIVE_MINUTE_FLOOR = timedelta(hours=25)
RETENTION = {HOUR: timedelta(days=8), DAY: timedelta(days=400)}
# Which granularity answers which uptime window.
WINDOWS = {
    "24h": (timedelta(hours=24), 300),
    "7d": (timedelta(days=7), 3600),
    "30d": (timedelta(days=30), 86400),
    "90d": (timedelta(days=90), 86400),
}


def bucket_start(at: datetime, granularity: int) -> datetime:
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % granularity, tz=at.tzinfo)


@dataclass
class Bucket:
    count: int = 0
    up: int = 0
    down: int = 0
    degraded: int = 0
    latency_sum: float = 0.0
    latency_min: float = float("inf")
    latency_max: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * len(HISTOGRAM_COLUMNS))

    def add(self, outcome: str, latency_ms: float) -> None:
        self.count += 1
        if outcome == "up":
            self.up += 1
        elif outcome == "down":
            self.down += 1
        else:
            self.degraded += 1
        if outcome == "down":
            # A failed check has no response time: its timeout or its refusal
            # in 0 ms would drag the average either way. Latency figures are
            # of answered checks (up + degraded).
            return
        self.latency_sum += latency_ms
        self.latency_min = min(self.latency_min, latency_ms)
        self.latency_max = max(self.latency_max, latency_ms)
        self.histogram[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1

    def merge_row(self, row: Any) -> None:
        self.count += row.count
        self.up += row.up
        self.down += row.down
        self.degraded += row.degraded
        self.latency_sum += row.latency_sum
        self.latency_min = min(self.latency_min, row.latency_min)
        self.latency_max = max(self.latency_max, row.latency_max)
        for i, column in enumerate(HISTOGRAM_COLUMNS):
            self.histogram[i] += getattr(row, column)


def aggregate(
    results: Iterable[tuple[uuid.UUID, datetime, str, float]],
    granularities: Sequence[int] = GRANULARITIES,
) -> list[dict[str, Any]]:
    """(monitor_id, checked_at, outcome, latency) -> one upsert row per
    monitor, granularity and bucket."""
    buckets: dict[tuple[uuid.UUID, int, datetime], Bucket] = {}
    # A batch spans a second or so: a handful of bucket starts, each made
    # into a datetime once rather than three times per result.
    starts: dict[tuple[int, int, Any], datetime] = {}
    for monitor_id, at, outcome, latency in results:
        seconds = int(at.timestamp())
        for granularity in granularities:
            start_key = (granularity, seconds - seconds % granularity, at.tzinfo)
            start = starts.get(start_key)
            if start is None:
                start = starts[start_key] = bucket_start(at, granularity)
            key = (monitor_id, granularity, start)
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = Bucket()
            bucket.add(outcome, latency)
    return [bucket_row(*key, b) for key, b in buckets.items()]


def bucket_row(
    monitor_id: uuid.UUID, granularity: int, start: datetime, bucket: Bucket
) -> dict[str, Any]:
    """A bucket as the rollups table takes it."""
    row: dict[str, Any] = {
        "monitor_id": monitor_id,
        "granularity": granularity,
        "bucket_start": start,
        "count": bucket.count,
        "up": bucket.up,
        "down": bucket.down,
        "degraded": bucket.degraded,
        "latency_sum": bucket.latency_sum,
        "latency_min": bucket.latency_min,
        "latency_max": bucket.latency_max,
    }
    row.update(zip(HISTOGRAM_COLUMNS, bucket.histogram, strict=True))
    return row


def percentile(histogram: Sequence[int], fraction: float, maximum: float) -> float | None:
    """Linear interpolation inside the bucket the rank falls in."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[index - 1] if index > 0 else 0.0
            high = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else maximum
            high = min(high, maximum)
            return round(low + (high - low) * (rank - seen) / count, 3)
        seen += count
    return maximum


def uptime_percent(up: int, down: int, degraded: int) -> float | None:
    """The one uptime rule: degraded is slow, not down, so it counts as
    available; None when nothing was checked. Three decimals everywhere."""
    known = up + down + degraded
    return round(100 * (up + degraded) / known, 3) if known else None


def summarize(bucket: Bucket) -> dict[str, Any]:
    answered = bucket.up + bucket.degraded
    return {
        "uptime_percent": uptime_percent(bucket.up, bucket.down, bucket.degraded),
        "checks": bucket.count,
        "up": bucket.up,
        "down": bucket.down,
        "degraded": bucket.degraded,
        "latency_avg_ms": round(bucket.latency_sum / answered, 3) if answered else None,
        "latency_p50_ms": percentile(bucket.histogram, 0.5, bucket.latency_max),
        "latency_p95_ms": percentile(bucket.histogram, 0.95, bucket.latency_max),
    }


FLEET_ADDITIVE = ("count", "up", "down", "degraded", "latency_sum", *HISTOGRAM_COLUMNS)
FLEET_CHANGES = ("went_down", "went_degraded", "recovered")


def _fleet_row(granularity: int, start: datetime) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys((*FLEET_ADDITIVE, *FLEET_CHANGES), 0)
    row.update(granularity=granularity, bucket_start=start, latency_sum=0.0)
    return row


def fleet_checks(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-monitor 5-minute rollup rows summed into one fleet row per
    granularity and bucket (the hour and the day they fall in too): a
    handful per write batch, so the fleet's rows need no derivation."""
    fleet: dict[tuple[int, datetime], dict[str, Any]] = {}
    for row in rows:
        for granularity in GRANULARITIES:
            key = (granularity, bucket_start(row["bucket_start"], granularity))
            total = fleet.get(key)
            if total is None:
                total = fleet[key] = _fleet_row(*key)
            for name in FLEET_ADDITIVE:
                total[name] += row[name]
    return list(fleet.values())


def change_column(from_state: str, to_state: str) -> str | None:
    """Which fleet count a state transition adds to: a monitor leaving
    pending for up at start-up is no recovery, so it counts nowhere."""
    if to_state == "down":
        return "went_down"
    if to_state == "degraded":
        return "went_degraded"
    if to_state == "up" and from_state in ("down", "degraded"):
        return "recovered"
    return None


def fleet_changes(transitions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """State transitions counted into fleet rows, per granularity and bucket."""
    fleet: dict[tuple[int, datetime], dict[str, Any]] = {}
    for t in transitions:
        column = change_column(t["from_state"], t["to_state"]) if t["kind"] == "state" else None
        if column is None:
            continue
        for granularity in GRANULARITIES:
            key = (granularity, bucket_start(t["at"], granularity))
            total = fleet.get(key)
            if total is None:
                total = fleet[key] = _fleet_row(*key)
            total[column] += 1
    return list(fleet.values())
