"""Uptime and latency history of many monitors at once, for status pages,
badges and the console: a fixed number of queries whatever the count."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.clock import utcnow
from infrawatch.monitoring import repository
from infrawatch.monitoring.rollups import bucket_start
from infrawatch.monitoring.service import display_status

DAY = 86400
HOUR = 3600


@dataclass
class Tally:
    checks: int = 0
    up: int = 0
    down: int = 0
    degraded: int = 0
    latency_sum: float = 0.0

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
        known = self.up + self.down + self.degraded
        # Degraded is slow, not down: it counts as available, as in the API's uptime.
        return round(100 * (self.up + self.degraded) / known, 3) if known else None

    @property
    def latency_avg_ms(self) -> float | None:
        return round(self.latency_sum / self.checks, 1) if self.checks else None


@dataclass
class Day:
    date: date
    tally: Tally


@dataclass
class Point:
    at: datetime
    latency_avg_ms: float | None


@dataclass
class History:
    id: uuid.UUID
    name: str
    type: str
    target: str
    status: str
    status_changed_at: datetime | None
    cert_expires_at: datetime | None
    days: list[Day] = field(default_factory=list)  # oldest first, one per day
    hourly: list[Point] = field(default_factory=list)  # the last 24 h, oldest first
    last_24h: Tally = field(default_factory=Tally)

    def uptime(self, days: int) -> float | None:
        """Over the last `days` days (1 reads the last 24 hours)."""
        if days <= 1:
            return self.last_24h.uptime_percent
        total = Tally()
        for day in self.days[-days:]:
            total.merge(day.tally)
        return total.uptime_percent


async def histories(
    session: AsyncSession, ids: Sequence[uuid.UUID], days: int = 90
) -> dict[uuid.UUID, History]:
    """Three queries: the monitors, their daily rollups, their hourly ones."""
    now = utcnow()
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
    today = bucket_start(now, DAY)
    first_day = today - timedelta(days=days - 1)
    daily: dict[uuid.UUID, dict[datetime, Tally]] = {k: {} for k in keys}
    for row in await repository.rollup_tuples(session, keys, DAY, first_day):
        daily[row[0]].setdefault(row[1], Tally()).add(row)
    this_hour = bucket_start(now, HOUR)
    first_hour = this_hour - timedelta(hours=23)
    hourly: dict[uuid.UUID, dict[datetime, Tally]] = {k: {} for k in keys}
    for row in await repository.rollup_tuples(session, keys, HOUR, first_hour):
        hourly[row[0]].setdefault(row[1], Tally()).add(row)
    day_starts = [first_day + timedelta(days=i) for i in range(days)]
    hour_starts = [first_hour + timedelta(hours=i) for i in range(24)]
    for key, history in found.items():
        by_day, by_hour = daily[key], hourly[key]
        history.days = [Day(d.date(), by_day.get(d) or Tally()) for d in day_starts]
        history.hourly = [
            Point(h, by_hour[h].latency_avg_ms if h in by_hour else None) for h in hour_starts
        ]
        for tally in by_hour.values():
            history.last_24h.merge(tally)
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


async def slowest(session: AsyncSession, hours: int = 1, limit: int = 6) -> list[Latency]:
    since = utcnow() - timedelta(hours=hours)
    return [
        Latency(monitor_id, name, type_, round(float(average or 0), 1), int(checks))
        for monitor_id, name, type_, average, checks in await repository.slowest_since(
            session, since, limit
        )
    ]


@dataclass
class Choice:
    id: uuid.UUID
    name: str
    type: str


async def monitor_choices(session: AsyncSession, limit: int = 2000) -> list[Choice]:
    """Monitors by name for the console's pickers (alert rules, windows, status pages)."""
    return [Choice(*row) for row in await repository.monitor_choices(session, limit)]
