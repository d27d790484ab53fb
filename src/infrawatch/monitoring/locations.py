"""Probe locations: every location a worker checked from, and whether it
still has a live worker. A location whose workers are all gone is news (an
alert of its own, claimed by alerting) and stops counting in the quorum of
the monitors that list it, which are then decided again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database, stage_event
from infrawatch.core.events import Event
from infrawatch.monitoring import quorum, repository

if TYPE_CHECKING:
    from infrawatch.monitoring.engine.writer import ResultWriter


@dataclass(frozen=True)
class LocationChange:
    name: str
    state: str  # up, gone
    at: datetime


async def watch_locations(
    db: Database, writer: ResultWriter, live_seconds: float
) -> list[LocationChange]:
    """One pass: note what changed since the last, in one transaction with
    the transitions it causes."""
    async with db.unit_of_work() as session:
        now = utcnow()
        live_since = now - timedelta(seconds=live_seconds)
        live = await repository.live_locations(session, live_since)
        known = {row.name: row.state for row in await repository.probe_locations(session)}
        changes = []
        for name in sorted(live - known.keys()):
            await repository.add_probe_location(session, name, now)
        for name, state in sorted(known.items()):
            wanted = "up" if name in live else "gone"
            if state != wanted and await repository.move_probe_location(
                session, name, state, wanted, now
            ):
                changes.append(LocationChange(name, wanted, now))
        if changes:
            affected = await repository.monitors_listing(session, {c.name for c in changes})
            transitions = await quorum.redecide(session, affected, live_since, at=now)
            if transitions:
                await writer.write_transitions(session, transitions)
            for change in changes:
                stage_event(
                    session,
                    Event(
                        "monitoring.location",
                        {"name": change.name, "state": change.state, "at": now.isoformat()},
                    ),
                )
        return changes
