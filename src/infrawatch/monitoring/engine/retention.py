"""Rollups are kept by granularity; the 5-minute ones hold the raw results,
so they are kept as long as those. Deleted in small batches so no pass holds
the database for long."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository
from infrawatch.monitoring.rollups import FIVE_MINUTE_FLOOR, FIVE_MINUTES, RETENTION

BATCH = 5000


def kept_for(raw_retention_hours: float) -> dict[int, timedelta]:
    """How long each granularity is kept, the results retention given."""
    raw = max(timedelta(hours=raw_retention_hours), FIVE_MINUTE_FLOOR)
    return {FIVE_MINUTES: raw, **RETENTION}


async def run_retention(db: Database, raw_retention_hours: float) -> int:
    removed = 0
    for granularity, keep in kept_for(raw_retention_hours).items():
        while True:
            async with db.unit_of_work() as session:
                count = await repository.delete_rollups_before(
                    session, granularity, utcnow() - keep, BATCH
                )
            removed += count
            if count < BATCH:
                break
            await asyncio.sleep(0.05)  # let the writer in between batches
        async with db.unit_of_work() as session:  # a row per bucket: a few hundred at most
            removed += await repository.delete_fleet_before(session, granularity, utcnow() - keep)
    return removed
