"""Uptime and latency history of many monitors at once, for status pages,
badges and the console: a fixed number of queries whatever the count."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.clock import as_utc, utcnow
from infrawatch.monitoring import repository
from infrawatch.monitoring.rollups import (
    DAY,
    HISTOGRAM_COLUMNS,
    HOUR,
    LATENCY_BOUNDS_MS,
    bucket_start,
    percentile,
    uptime_percent,
)
from infrawatch.monitoring.service import display_status


class Tally:
    """Checks counted over a span (a day, an hour, 24 hours)."""

    __slots__ = ("checks", "degraded", "down", "latency_sum", "up")

    def __init__(self) -> None:
        self.checks = self.up = self.down = self.degraded = 0
        self.latency_sum = 0.0

    def add(self, row: Any) -> None:
        """A row of repository.rollup_tuples."""
        _, _, count, up, down, degraded, latency_sum = row
        self.checks += count
        self.up += up
        self.down += down
        self.degraded += degraded
        self.latency_sum += latency_sum

    def merge(self, other: Tally) -> None:
        self.checks += other.checks
        self.up += other.up
        self.down += other.down
        self.degraded += other.degraded
        self.latency_sum += other.latency_sum

    @property
    def uptime_percent(self) -> float | None:
        return uptime_percent(self.up, self.down, self.degraded)

    @property
    def latency_avg_ms(self) -> float | None:
        answered = self.up + self.degraded  # failed checks carry no latency (rollups.Bucket)
        return round(self.latency_sum / answered, 1) if answered else None


@dataclass
class Point:
    at: datetime
    latency_avg_ms: float | None


class Rollups:
    """What the rollups say of one monitor: slow to change, so cacheable.
    Days are parallel columns (index 0 the oldest): a page of 100 monitors
    reads 9,000 days, and objects per day cost more than the query."""

    def __init__(self, dates: list[str]) -> None:
        count = len(dates)
        self.dates = dates  # ISO dates, UTC; shared by every monitor of a read
        self.checks = [0] * count
        self.up = [0] * count
        self.down = [0] * count
        self.degraded = [0] * count
        self.latency_sum = [0.0] * count
        self.hourly: list[Point] = []  # the last 24 h, oldest first
        self.last_24h = Tally()
        # What readers derive (drawn bars, JSON), kept as long as the rollups.
        self.memo: dict[str, Any] = {}

    def add_day(self, index: int, row: Any) -> None:
        """A row of repository.rollup_tuples for the day at `index`."""
        self.checks[index] += row[2]
        self.up[index] += row[3]
        self.down[index] += row[4]
        self.degraded[index] += row[5]
        self.latency_sum[index] += row[6]

    def percents(self) -> list[float | None]:
        """Uptime per day; None where nothing was checked."""
        if "percents" not in self.memo:
            self.memo["percents"] = [
                uptime_percent(up, down, degraded)
                for up, down, degraded in zip(self.up, self.down, self.degraded, strict=True)
            ]
        found: list[float | None] = self.memo["percents"]
        return found

    def uptime(self, days: int) -> float | None:
        """Over the last `days` days (1 reads the last 24 hours)."""
        if days <= 1:
            return self.last_24h.uptime_percent
        key = f"uptime-{days}"
        if key not in self.memo:
            up, down, degraded = (sum(c[-days:]) for c in (self.up, self.down, self.degraded))
            self.memo[key] = uptime_percent(up, down, degraded)
        result: float | None = self.memo[key]
        return result


@dataclass
class History:
    """A monitor now (always read fresh) and its rollups."""

    id: uuid.UUID
    name: str
    type: str
    target: str
    status: str
    status_changed_at: datetime | None
    cert_expires_at: datetime | None
    rollups: Rollups = field(default_factory=lambda: Rollups([]))

    @property
    def hourly(self) -> list[Point]:
        return self.rollups.hourly

    @property
    def last_24h(self) -> Tally:
        return self.rollups.last_24h

    def uptime(self, days: int) -> float | None:
        return self.rollups.uptime(days)


async def rollups(
    session: AsyncSession, ids: Sequence[uuid.UUID], days: int = 90
) -> dict[uuid.UUID, Rollups]:
    """Two queries: daily rollups for `days` days, hourly ones for 24 h."""
    now = utcnow()
    keys = list(ids)
    if not keys:
        return {}
    first_day = bucket_start(now, DAY) - timedelta(days=days - 1)
    first = int(first_day.timestamp()) // DAY
    dates = [(first_day + timedelta(days=i)).date().isoformat() for i in range(days)]
    found = {key: Rollups(dates) for key in keys}
    for row in await repository.rollup_tuples(session, keys, DAY, first_day):
        index = int(row[1].timestamp()) // DAY - first
        if 0 <= index < days:
            found[row[0]].add_day(index, row)
    first_hour = bucket_start(now, HOUR) - timedelta(hours=23)
    hourly: dict[uuid.UUID, dict[datetime, Tally]] = {k: {} for k in keys}
    for row in await repository.rollup_tuples(session, keys, HOUR, first_hour):
        tally = hourly[row[0]][row[1]] = Tally()
        tally.add(row)
    hour_starts = [first_hour + timedelta(hours=i) for i in range(24)]
    for key, result in found.items():
        by_hour = hourly[key]
        result.hourly = [
            Point(h, by_hour[h].latency_avg_ms if h in by_hour else None) for h in hour_starts
        ]
        for tally in by_hour.values():
            result.last_24h.merge(tally)
    return found


# A chart's range → the rollups it is drawn from (5-minute ones are kept
# at least 25 h, hourly ones 8 days: engine/retention.py).
SERIES_RANGES: dict[str, tuple[timedelta, int]] = {
    "1h": (timedelta(hours=1), 300),
    "24h": (timedelta(hours=24), 300),
    "7d": (timedelta(days=7), HOUR),
    "30d": (timedelta(days=30), DAY),
}


@dataclass
class SeriesPoint:
    at: datetime
    latency_avg_ms: float | None  # of answered checks; None: none answered
    uptime_percent: float | None
    checks: int


def _buckets(span: str) -> tuple[int, list[datetime]]:
    """A chart range's granularity and the starts of its buckets, oldest
    first, the current (partial) bucket last."""
    length, granularity = SERIES_RANGES[span]
    now = utcnow()
    at = bucket_start(now - length, granularity) + timedelta(seconds=granularity)
    starts = []
    while at <= now:
        starts.append(at)
        at += timedelta(seconds=granularity)
    return granularity, starts


async def series(session: AsyncSession, monitor_id: uuid.UUID, span: str) -> list[SeriesPoint]:
    """One point per bucket of the range, oldest first; a bucket without
    checks is a point with None values, so a chart shows the gap."""
    granularity, starts = _buckets(span)
    tallies: dict[datetime, Tally] = {}
    for row in await repository.rollup_tuples(session, [monitor_id], granularity, starts[0]):
        tallies.setdefault(as_utc(row[1]), Tally()).add(row)
    empty = Tally()
    return [
        SeriesPoint(at, t.latency_avg_ms, t.uptime_percent, t.checks)
        for at, t in ((at, tallies.get(at, empty)) for at in starts)
    ]


@dataclass
class FleetPoint:
    at: datetime
    checks: int
    uptime_percent: float | None  # up + degraded of all checks in the bucket
    latency_avg_ms: float | None  # of answered checks
    latency_p95_ms: float | None  # within a histogram bucket's width, 10 s at most
    went_down: int
    went_degraded: int
    recovered: int


async def fleet_series(session: AsyncSession, span: str) -> list[FleetPoint]:
    """All monitors together, one point per bucket of the range (from the
    fleet rollups: a few hundred rows whatever the number of monitors)."""
    granularity, starts = _buckets(span)
    stored = {
        as_utc(row.bucket_start): row
        for row in await repository.fleet_rows_since(session, granularity, starts[0])
    }
    points = []
    for at in starts:
        row = stored.get(at)
        if row is None:
            points.append(FleetPoint(at, 0, None, None, None, 0, 0, 0))
            continue
        tally = Tally()
        tally.add((None, at, row.count, row.up, row.down, row.degraded, row.latency_sum))
        histogram = [getattr(row, column) for column in HISTOGRAM_COLUMNS]
        points.append(
            FleetPoint(
                at,
                row.count,
                tally.uptime_percent,
                tally.latency_avg_ms,
                percentile(histogram, 0.95, LATENCY_BOUNDS_MS[-1]),
                row.went_down,
                row.went_degraded,
                row.recovered,
            )
        )
    return points


class RollupCache:
    """Rollups of a set of monitors, kept for `ttl` seconds: a public page
    read by a crowd during an outage reads them once a minute, not once a
    request. Current states are never cached."""

    def __init__(self, ttl: float = 60.0, entries: int = 256) -> None:
        self.ttl = ttl
        self.entries = entries
        self._cached: dict[tuple[Any, ...], tuple[float, dict[uuid.UUID, Rollups]]] = {}

    async def get(
        self, session: AsyncSession, ids: Sequence[uuid.UUID], days: int
    ) -> dict[uuid.UUID, Rollups]:
        key = (days, *sorted(ids))
        now = time.monotonic()
        hit = self._cached.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await rollups(session, ids, days)
        if len(self._cached) >= self.entries:
            self._cached.pop(next(iter(self._cached)))
        self._cached[key] = (now + self.ttl, found)
        return found

    def clear(self) -> None:
        self._cached.clear()


async def histories(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    days: int = 90,
    cache: RollupCache | None = None,
) -> dict[uuid.UUID, History]:
    """The monitors' current states (one query) and their rollups (two
    queries, or none when the cache has them)."""
    monitors = await repository.monitors_by_ids(session, list(ids))
    found = {
        m.id: History(
            id=m.id,
            name=m.name,
            type=m.type,
            target=m.target,
            status=display_status(m),
            status_changed_at=m.status_changed_at,
            cert_expires_at=m.cert_expires_at,
        )
        for m in monitors
    }
    if not found:
        return found
    keys = list(found)
    counted = await (cache.get(session, keys, days) if cache else rollups(session, keys, days))
    for key, history in found.items():
        history.rollups = counted.get(key) or Rollups([])
    return found


@dataclass
class StateChange:
    monitor_id: uuid.UUID
    monitor_name: str
    from_state: str
    to_state: str
    at: datetime
    reason: str | None


@dataclass
class Latency:
    monitor_id: uuid.UUID
    name: str
    type: str
    average_ms: float
    checks: int


async def status_counts(session: AsyncSession) -> dict[str, int]:
    """Monitors per shown status (paused and maintenance win over the state)."""
    found = await repository.display_status_counts(session)
    states = ("up", "degraded", "down", "pending", "paused", "maintenance")
    return {state: found.get(state, 0) for state in states}


async def latest_changes(session: AsyncSession, limit: int = 15) -> list[StateChange]:
    return [
        StateChange(t.monitor_id, name, t.from_state, t.to_state, t.at, t.reason)
        for t, name in await repository.latest_state_changes(session, limit)
    ]


SLOWEST_WINDOW = timedelta(minutes=10)


async def slowest(
    session: AsyncSession, memo: dict[str, Any], limit: int = 6, ttl: float = 15.0
) -> list[Latency]:
    """The slowest monitors of the last 10 minutes (two 5-minute buckets).
    Kept in `memo` (the caller's, one per running app) for `ttl` seconds: at
    20,000 monitors it aggregates 40,000 rows, and the overview asks on
    every refresh."""
    now = time.monotonic()
    kept = memo.get("slowest")
    if kept is not None and kept[0] > now:
        cached: list[Latency] = kept[1]
        return cached
    since = bucket_start(utcnow() - SLOWEST_WINDOW + timedelta(minutes=5), 300)
    found = [
        Latency(monitor_id, name, type_, round(float(average or 0), 1), int(checks))
        for monitor_id, name, type_, average, checks in await repository.slowest_since(
            session, since, limit
        )
    ]
    memo["slowest"] = (now + ttl, found)
    return found


@dataclass
class Choice:
    id: uuid.UUID
    name: str
    type: str


async def monitor_choices(session: AsyncSession, limit: int = 2000) -> list[Choice]:
    """Monitors by name for the console's pickers (alert rules, windows, status pages)."""
    return [Choice(*row) for row in await repository.monitor_choices(session, limit)]
