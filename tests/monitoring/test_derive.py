"""Hours and days derived from the 5-minute rows: equal to what the checks
add up to, right however often a pass runs, and nothing lost to a batch
that lands while an hour is being derived."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository
from infrawatch.monitoring.engine.derive import derive_marked_hours
from infrawatch.monitoring.engine.writer import ResultWriter
from infrawatch.monitoring.models import MonitorRollup, RollupMark
from infrawatch.monitoring.rollups import DAY, HOUR, bucket_start
from infrawatch.monitoring.rows import ResultRow
from tests.monitoring.helpers import create_http_monitor


def result(monitor_id: uuid.UUID, at: datetime, outcome: str, latency: float) -> ResultRow:
    return ResultRow(
        monitor_id=monitor_id,
        checked_at=at,
        outcome=outcome,
        state=outcome,
        streak=1,
        latency_ms=latency,
        status_code=200,
        error=None if outcome == "up" else "HTTP 500",
        details=None,
        location="default",
    )


async def figures(db: Database, monitor_id: uuid.UUID, granularity: int) -> dict[datetime, Any]:
    async with db.unit_of_work(write=False) as session:
        rows = await session.execute(
            select(
                MonitorRollup.bucket_start,
                MonitorRollup.count,
                MonitorRollup.up,
                MonitorRollup.down,
                MonitorRollup.latency_sum,
                MonitorRollup.latency_max,
                MonitorRollup.h0,
            ).where(
                MonitorRollup.monitor_id == monitor_id, MonitorRollup.granularity == granularity
            )
        )
        return {r[0]: tuple(r[1:]) for r in rows}


async def test_hours_and_days_add_up_to_the_checks_however_often_derived(
    api: Any, db: Database
) -> None:
    monitor_id = uuid.UUID(await create_http_monitor(api, "http://127.0.0.1:9/", paused=True))
    hour = bucket_start(utcnow(), HOUR) - timedelta(hours=1)
    writer = ResultWriter(db)
    # An hour of checks every 30 s, one in ten failing, 20 ms or 40 ms.
    for n in range(120):
        outcome = "down" if n % 10 == 0 else "up"
        writer.add_result(
            result(monitor_id, hour + timedelta(seconds=30 * n), outcome, 20.0 + 20 * (n % 2))
        )
    assert await writer.flush()
    assert await derive_marked_hours(db, 48) == 1
    hourly = await figures(db, monitor_id, HOUR)
    daily = await figures(db, monitor_id, DAY)
    ((count, up, down, latency_sum, latency_max, _),) = hourly.values()
    assert (count, up, down, latency_max) == (120, 108, 12, 40.0)
    # Latency of answered checks only: 108 up, of which the odd ones took 40 ms.
    odd_up = sum(1 for n in range(120) if n % 2 and n % 10)
    assert latency_sum == 20.0 * (108 - odd_up) + 40.0 * odd_up
    assert list(daily.values()) == list(hourly.values())
    assert list(daily) == [bucket_start(hour, DAY)] and list(hourly) == [hour]

    # Deriving again changes nothing; a late check moves hour and day by itself.
    assert await derive_marked_hours(db, 48) == 0
    writer.add_result(result(monitor_id, hour + timedelta(minutes=59, seconds=59), "up", 30.0))
    assert await writer.flush()
    assert await derive_marked_hours(db, 48) == 1
    (late_hour,) = (await figures(db, monitor_id, HOUR)).values()
    (late_day,) = (await figures(db, monitor_id, DAY)).values()
    assert late_hour[:3] == late_day[:3] == (121, 109, 12)
    assert late_hour[3] == late_day[3] == latency_sum + 30.0


async def test_a_batch_that_lands_while_an_hour_is_derived_keeps_its_mark(
    api: Any, db: Database
) -> None:
    monitor_id = uuid.UUID(await create_http_monitor(api, "http://127.0.0.1:9/", paused=True))
    hour = bucket_start(utcnow(), HOUR)
    writer = ResultWriter(db)
    writer.add_result(result(monitor_id, hour + timedelta(seconds=1), "up", 5.0))
    assert await writer.flush()
    async with db.unit_of_work(write=False) as session:
        ((marked, version),) = [m for m in await repository.rollup_marks(session) if m[0] == hour]
    # Another batch in the same hour, after the pass read the mark.
    writer.add_result(result(monitor_id, hour + timedelta(seconds=2), "up", 5.0))
    assert await writer.flush()
    async with db.unit_of_work() as session:
        await repository.clear_mark(session, marked, version)
    async with db.unit_of_work(write=False) as session:
        left = await session.scalar(
            select(func.count()).select_from(RollupMark).where(RollupMark.hour_start == hour)
        )
    assert left == 1  # the next pass derives the hour again, with the second check


async def test_an_hour_retention_is_sweeping_is_not_derived(api: Any, db: Database) -> None:
    """Its 5-minute rows are going: derived now, the hour would shrink and
    its day lose what it had counted."""
    monitor_id = uuid.UUID(await create_http_monitor(api, "http://127.0.0.1:9/", paused=True))
    old = bucket_start(utcnow() - timedelta(hours=60), HOUR)
    writer = ResultWriter(db)
    writer.add_result(result(monitor_id, old, "up", 5.0))
    assert await writer.flush()
    assert await derive_marked_hours(db, 48) == 0
    assert await figures(db, monitor_id, HOUR) == {}
    async with db.unit_of_work(write=False) as session:
        hours = [h for h, _ in await repository.rollup_marks(session)]
    assert old not in hours  # dropped, not left to pile up
