"""Raw results are kept for a window, rollups by granularity; deleted in
small batches so no pass holds the database for long."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository
from infrawatch.monitoring.rollups import RETENTION

BATCH = 5000


async def run_retention(db: Database, raw_retention_hours: float) -> int:
    removed = 0
    cutoff = utcnow() - timedelta(hours=raw_retention_hours)
    while True:
        async with db.unit_of_work() as session:
            count = await repository.delete_results_before(session, cutoff, BATCH)
        removed += count
        if count < BATCH:
            break
        await asyncio.sleep(0.05)  # let the writer in between batches
    for granularity, keep in RETENTION.items():
        if keep is None:
            continue
        while True:
            async with db.unit_of_work() as session:
                count = await repository.delete_rollups_before(
                    session, granularity, utcnow() - keep, BATCH
                )
            removed += count
            if count < BATCH:
                break
        async with db.unit_of_work() as session:  # a row per bucket: a few hundred at most
            removed += await repository.delete_fleet_before(session, granularity, utcnow() - keep)
    return removed
