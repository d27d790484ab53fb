"""Hourly and daily rollups, derived from the 5-minute ones by a periodic
pass instead of two more upserts per check.

The writer marks each hour its batch touched (`rollup_marks`). A pass
recomputes a marked hour's rows from its 5-minute rows and adds what
changed to the day: replacing makes an hour right however often it is
derived, and the day moves by exactly what its hour moved. A batch that
lands while an hour is derived bumps the mark, which then stays for the
next pass; results written late (a writer that was cut off for an hour)
mark their old hour again and are counted when they arrive.

Hourly and daily figures therefore trail the checks by up to one pass
(`derive_seconds`, a minute by default); the 5-minute ones, and
everything raw, do not."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository
from infrawatch.monitoring.engine.retention import kept_for
from infrawatch.monitoring.rollups import (
    DAY,
    FIVE_MINUTES,
    HOUR,
    Bucket,
    bucket_row,
    bucket_start,
)

CHUNK = 2000  # monitors per transaction: no pass holds the database for long


async def derive_marked_hours(db: Database, raw_retention_hours: float) -> int:
    """Every marked hour derived; returns how many were."""
    async with db.unit_of_work(write=False) as session:
        marks = await repository.rollup_marks(session)
    # An hour whose 5-minute rows retention is sweeping would come out
    # short, and its day would lose what it had: such a mark is dropped.
    oldest = utcnow() - kept_for(raw_retention_hours)[FIVE_MINUTES] + timedelta(hours=1)
    derived = 0
    for hour, version in marks:
        if hour >= oldest:
            await derive_hour(db, hour)
            derived += 1
        async with db.unit_of_work() as session:
            await repository.clear_mark(session, hour, version if hour >= oldest else None)
    return derived


async def derive_hour(db: Database, hour: datetime) -> None:
    end = hour + timedelta(seconds=HOUR)
    day = bucket_start(hour, DAY)
    async with db.unit_of_work(write=False) as session:
        ids = await repository.monitors_with_rollups(session, FIVE_MINUTES, hour, end)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        async with db.unit_of_work() as session:
            await repository.take_derive_lock(session)
            sums: dict[uuid.UUID, Bucket] = {}
            for row in await repository.rollup_figures(session, chunk, FIVE_MINUTES, hour, end):
                sums.setdefault(row.monitor_id, Bucket()).merge_row(row)
            before: dict[uuid.UUID, Bucket] = {}
            for row in await repository.rollup_figures(session, chunk, HOUR, hour, end):
                before.setdefault(row.monitor_id, Bucket()).merge_row(row)
            hours, days = [], []
            for monitor_id, now in sums.items():
                hours.append(bucket_row(monitor_id, HOUR, hour, now))
                change = _difference(now, before.get(monitor_id))
                if change is not None:
                    days.append(bucket_row(monitor_id, DAY, day, change))
            await repository.replace_rollups(session, hours)
            await repository.upsert_rollups(session, days)


def _difference(now: Bucket, before: Bucket | None) -> Bucket | None:
    """What an hour gained since it was last derived (its 5-minute rows only
    ever gain checks, so every count is ≥ 0 and the extremes only widen)."""
    if before is None:
        return now
    if now.count == before.count:
        return None
    return Bucket(
        count=now.count - before.count,
        up=now.up - before.up,
        down=now.down - before.down,
        degraded=now.degraded - before.degraded,
        latency_sum=now.latency_sum - before.latency_sum,
        latency_min=now.latency_min,
        latency_max=now.latency_max,
        histogram=[a - b for a, b in zip(now.histogram, before.histogram, strict=True)],
    )
