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

from datetime import datetime, timedelta

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository
from infrawatch.monitoring.engine.retention import kept_for
from infrawatch.monitoring.rollups import DAY, FIVE_MINUTES, HOUR, bucket_start

CHUNK = 5000  # monitors per transaction: no pass holds the database for long


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
    async with db.unit_of_work(write=False) as session:
        ids = await repository.monitors_with_rollups(session, FIVE_MINUTES, hour, end)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        async with db.unit_of_work() as session:
            await repository.take_derive_lock(session)
            await repository.derive_from_five_minutes(
                session, chunk[0], chunk[-1], hour, bucket_start(hour, DAY)
            )
