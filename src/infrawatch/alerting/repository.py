"""Every query of the alerting domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting.models import (
    AlertRule,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    NotificationChannel,
    OutboxMessage,
)
from infrawatch.core.pagination import SortKey, after_cursor, order_by

T = TypeVar("T")


def add(session: AsyncSession, row: Any) -> None:
    session.add(row)


async def get(session: AsyncSession, model: type[T], row_id: uuid.UUID) -> T | None:
    return await session.get(model, row_id)


async def by_name(session: AsyncSession, model: Any, name: str) -> Any:
    return (await session.scalars(select(model).where(model.name == name))).first()


async def all_of(session: AsyncSession, model: Any) -> list[Any]:
    return list(await session.scalars(select(model).order_by(model.name)))


async def remove(session: AsyncSession, row: Any) -> None:
    await session.delete(row)


async def channels_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, NotificationChannel]:
    if not ids:
        return {}
    rows = await session.scalars(select(NotificationChannel).where(NotificationChannel.id.in_(ids)))
    return {c.id: c for c in rows}


async def enabled_channel_ids(session: AsyncSession) -> frozenset[uuid.UUID]:
    query = select(NotificationChannel.id).where(NotificationChannel.enabled.is_(True))
    return frozenset(await session.scalars(query))


async def enabled_rules(session: AsyncSession) -> list[AlertRule]:
    return list(await session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))))


# --- incidents --------------------------------------------------------------------------


# Incidents for deciding are read as plain rows (IncidentState.of takes
# them): a storm reads thousands, and ORM identity cost 10 times as much.
_INCIDENT = cast(Table, Incident.__table__)


async def _incident_rows(session: AsyncSession, *conditions: Any) -> list[Any]:
    query = select(_INCIDENT).where(*conditions).order_by(_INCIDENT.c.opened_at, _INCIDENT.c.id)
    return list(await session.execute(query))


async def open_incidents_of_monitors(
    session: AsyncSession, monitor_ids: Sequence[uuid.UUID]
) -> list[Any]:
    if not monitor_ids:
        return []
    return await _incident_rows(
        session, _INCIDENT.c.monitor_id.in_(sorted(set(monitor_ids))), _INCIDENT.c.status == "open"
    )


async def oldest_open_incident_per_server(
    session: AsyncSession, monitor_ids: Sequence[uuid.UUID]
) -> list[Any]:
    """Of these monitors' open incidents, the oldest on each server: what a
    hold hangs under (the rest of an upstream outage adds nothing to it)."""
    if not monitor_ids:
        return []
    rank = (
        func.row_number()
        .over(
            partition_by=_INCIDENT.c.server_id,
            order_by=(_INCIDENT.c.opened_at, _INCIDENT.c.id),
        )
        .label("rank")
    )
    ranked = (
        select(_INCIDENT, rank)
        .where(_INCIDENT.c.monitor_id.in_(sorted(set(monitor_ids))), _INCIDENT.c.status == "open")
        .subquery()
    )
    query = select(*(ranked.c[c.name] for c in _INCIDENT.c)).where(ranked.c.rank == 1)
    return list(await session.execute(query))


async def held_children(session: AsyncSession, parent_ids: Sequence[uuid.UUID]) -> list[Any]:
    if not parent_ids:
        return []
    return await _incident_rows(
        session, _INCIDENT.c.parent_id.in_(sorted(set(parent_ids))), _INCIDENT.c.status == "open"
    )


async def orphaned_upstream_holds(session: AsyncSession) -> list[Any]:
    return await _incident_rows(
        session,
        _INCIDENT.c.held == "upstream",
        _INCIDENT.c.parent_id.is_(None),
        _INCIDENT.c.status == "open",
    )


async def held_for_maintenance(session: AsyncSession) -> list[Any]:
    return await _incident_rows(
        session, _INCIDENT.c.held == "maintenance", _INCIDENT.c.status == "open"
    )


async def reminders_due(session: AsyncSession) -> list[Any]:
    return await _incident_rows(
        session,
        _INCIDENT.c.status == "open",
        _INCIDENT.c.acknowledged_at.is_(None),
        _INCIDENT.c.held.is_(None),
        _INCIDENT.c.notified.is_(True),
    )


# What decide may change on an incident (alerting/decide.py).
INCIDENT_STATE = (
    "status",
    "resolved_at",
    "held",
    "parent_id",
    "notified",
    "last_notified_at",
    "reminders_sent",
)


async def save_incidents(
    session: AsyncSession, opened: list[dict[str, Any]], changed: list[dict[str, Any]]
) -> None:
    """New incidents in one multi-row INSERT, parents before the incidents
    held under them; the changed ones' state in one executemany."""
    if opened:
        await session.execute(insert(_INCIDENT), _parents_first(opened))
    if changed:
        stmt = (
            update(_INCIDENT)
            .where(_INCIDENT.c.id == bindparam("target_id"))
            .values({name: bindparam(f"new_{name}") for name in INCIDENT_STATE})
        )
        await session.execute(
            stmt,
            [
                {"target_id": row["id"], **{f"new_{n}": row[n] for n in INCIDENT_STATE}}
                for row in sorted(changed, key=lambda r: str(r["id"]))
            ],
        )


def _parents_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A hold can hang under an incident opened later in the same batch."""
    waiting = {row["id"]: row for row in rows}
    ordered: list[dict[str, Any]] = []
    while waiting:
        # (The dependency graph has no cycles, so neither do holds; the
        # fallback only keeps a bug from looping here.)
        ready = [r for r in waiting.values() if r["parent_id"] not in waiting] or list(
            waiting.values()
        )
        for row in ready:
            del waiting[row["id"]]
        ordered.extend(ready)
    return ordered


async def add_incident_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(cast(Table, IncidentEvent.__table__)), rows)


INCIDENT_ORDER = (
    SortKey("opened_at", Incident.__table__.c.opened_at, descending=True),
    SortKey("id", Incident.__table__.c.id, descending=True),
)


async def page_incidents(
    session: AsyncSession, status: str | None, after: Sequence[Any] | None, limit: int
) -> list[Incident]:
    query = select(Incident)
    if status:
        query = query.where(Incident.status == status)
    if after is not None:
        query = query.where(after_cursor(INCIDENT_ORDER, after))
    return list(await session.scalars(query.order_by(*order_by(INCIDENT_ORDER)).limit(limit)))


async def incidents_overlapping(
    session: AsyncSession, since: datetime, limit: int
) -> list[Incident]:
    """Incidents open at some moment after `since`: still open, or resolved
    since. The newest first."""
    query = (
        select(Incident)
        .where(or_(Incident.status == "open", Incident.resolved_at >= since))
        .order_by(Incident.opened_at.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def count_incidents(session: AsyncSession, status: str | None) -> int:
    query = select(func.count()).select_from(Incident)
    if status:
        query = query.where(Incident.status == status)
    return int(await session.scalar(query) or 0)


async def timelines(
    session: AsyncSession, incident_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[IncidentEvent]]:
    found: dict[uuid.UUID, list[IncidentEvent]] = {i: [] for i in incident_ids}
    if incident_ids:
        query = (
            select(IncidentEvent)
            .where(IncidentEvent.incident_id.in_(incident_ids))
            .order_by(IncidentEvent.id)
        )
        for event in await session.scalars(query):
            found[event.incident_id].append(event)
    return found


# --- the outbox ------------------------------------------------------------------------


async def enqueue(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: a message already queued for this
    channel and key stays the only one."""
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(OutboxMessage).on_conflict_do_nothing(
        index_elements=["channel_id", "dedupe_key"]
    )
    await session.execute(stmt, rows)


async def anything_to_settle(session: AsyncSession, now: datetime) -> bool:
    query = (
        select(OutboxMessage.id)
        .where(
            or_(
                and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
                OutboxMessage.status == "sending",
            )
        )
        .limit(1)
    )
    return (await session.scalar(query)) is not None


async def due_channels(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Channels with a message due, oldest due first."""
    query = (
        select(OutboxMessage.channel_id, func.min(OutboxMessage.next_attempt_at))
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .group_by(OutboxMessage.channel_id)
        .order_by(func.min(OutboxMessage.next_attempt_at))
        .limit(limit)
    )
    return [row[0] for row in await session.execute(query)]


async def claim_next(
    session: AsyncSession, channel_id: uuid.UUID, owner: str, now: datetime
) -> OutboxMessage | None:
    """The channel's next due message, marked `sending` — unless one of its
    messages is in flight already (here or in another process): one send at
    a time per channel, in order. The channel row is locked meanwhile on
    PostgreSQL, so two processes cannot both find the channel idle."""
    if session.get_bind().dialect.name == "postgresql":
        locked = await session.scalar(
            select(NotificationChannel.id)
            .where(NotificationChannel.id == channel_id)
            .with_for_update(skip_locked=True)
        )
        if locked is None:
            return None  # another process is claiming for this channel
    busy = await session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.channel_id == channel_id, OutboxMessage.status == "sending")
        .limit(1)
    )
    if busy is not None:
        return None
    message = await session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.channel_id == channel_id,
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
    )
    if message is not None:
        message.status = "sending"
        message.claimed_by = owner
        message.claimed_at = now
        message.attempts += 1
    return message


async def settle(session: AsyncSession, message_id: int, values: dict[str, Any]) -> None:
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
    )


async def abandon_interrupted(session: AsyncSession, claimed_before: datetime) -> int:
    """Messages left in 'sending' longer than any send may take: their
    process died. They may or may not have gone out; at most once means we
    do not send them again."""
    query = update(OutboxMessage).where(
        OutboxMessage.status == "sending", OutboxMessage.claimed_at < claimed_before
    )
    result = await session.execute(
        query.values(status="unknown", last_error="interrupted while sending; not retried")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def outbox_depth(session: AsyncSession) -> int:
    query = select(func.count()).where(OutboxMessage.status == "pending")
    return int(await session.scalar(query) or 0)


async def windows(session: AsyncSession) -> list[MaintenanceWindow]:
    return list(await session.scalars(select(MaintenanceWindow)))
