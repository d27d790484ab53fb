"""From monitor transitions to incidents and queued notifications.

Transitions are claimed from the database (not taken from the bus), marked
handled in the same transaction that opens the incident and queues the
messages: a crash in between loses nothing and doubles nothing.

Each piece of work is three steps: load the world it needs in a fixed
number of queries (`world.py`), decide without I/O (`decide.py`), apply the
actions here in a fixed number of statements."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository, world
from infrawatch.alerting.decide import (
    Actions,
    IncidentState,
    decide,
    decide_location_news,
    decide_maintenance_releases,
    decide_reminders,
)
from infrawatch.core.clock import utcnow
from infrawatch.core.db import stage_event
from infrawatch.monitoring import service as monitoring

# Transitions per claimed batch. Each batch loads its world once (servers,
# graph, incidents), so an outage's cost is mostly batches times world: 500
# halved the storm benchmark's time against 200 (docs/benchmarks.md), and a
# batch still commits in well under a second on SQLite.
BATCH = 500


async def process_transitions(session: AsyncSession, settle_seconds: float) -> int:
    transitions = await monitoring.claim_unalerted_transitions(session, settle_seconds, BATCH)
    if not transitions:
        return 0
    actions = decide(transitions, await world.for_transitions(session, transitions))
    await apply(session, actions)
    await monitoring.mark_alerted(session, [t.id for t in transitions])
    return len(transitions)


async def process_location_news(session: AsyncSession) -> int:
    news = await monitoring.claim_location_news(session)
    if not news:
        return 0
    await apply(session, decide_location_news(news, await world.for_the_fleet(session)))
    await monitoring.mark_location_news(session, [item.name for item in news])
    return len(news)


async def send_reminders(session: AsyncSession) -> int:
    due = await repository.reminders_due(session)
    if not due:
        return 0
    actions = decide_reminders(
        [IncidentState.of(i) for i in due], await world.for_incidents(session, due)
    )
    await apply(session, actions)
    return sum(1 for note in actions.notes if note.kind == "reminder")


async def release_maintenance_holds(session: AsyncSession) -> int:
    """A window ended while a monitor was down: now it is news."""
    held = await repository.held_for_maintenance(session)
    if not held:
        return 0
    actions = decide_maintenance_releases(
        [IncidentState.of(i) for i in held], await world.for_incidents(session, held)
    )
    await apply(session, actions)
    return sum(1 for note in actions.notes if note.kind == "released")


async def apply(session: AsyncSession, actions: Actions) -> None:
    """Write what was decided: incidents, their timeline, the outbox (one
    row per channel, a second sighting of a key adds nothing), events."""
    await repository.save_incidents(
        session,
        [dict(vars(i)) for i in actions.opened],
        [dict(vars(i)) for i in actions.changed],
    )
    await repository.add_incident_events(
        session,
        [
            {"incident_id": n.incident_id, "at": n.at, "kind": n.kind, "message": n.message}
            for n in actions.notes
        ],
    )
    now = utcnow()
    await repository.enqueue(
        session,
        [
            {
                "channel_id": channel_id,
                "dedupe_key": m.key,
                "event": m.event,
                "title": m.title,
                "body": m.body,
                "payload": m.payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for m in actions.messages
            for channel_id in m.channel_ids
        ],
    )
    for event in actions.events:
        stage_event(session, event)
