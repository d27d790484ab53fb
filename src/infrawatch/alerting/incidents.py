"""Incidents as people read and acknowledge them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository, rows
from infrawatch.alerting.models import (
    Incident,
    IncidentEvent,
)
from infrawatch.alerting.schemas import (
    IncidentEventOut,
    IncidentOut,
)
from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict
from infrawatch.core.pagination import Page, decode_cursor, encode_cursor


def incident_out(incident: Incident, timeline: list[IncidentEvent]) -> IncidentOut:
    return IncidentOut(
        id=incident.id,
        monitor_id=incident.monitor_id,
        server_id=incident.server_id,
        title=incident.title,
        status=incident.status,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        acknowledged_at=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        held=incident.held,
        parent_id=incident.parent_id,
        timeline=[IncidentEventOut(at=e.at, kind=e.kind, message=e.message) for e in timeline],
    )


async def list_incidents(
    session: AsyncSession, status: str | None, cursor: str | None, limit: int
) -> Page[IncidentOut]:
    # Newest first, the id breaking ties: incidents opened in the same
    # instant (an outage of many monitors) are neither skipped nor repeated
    # at a page's edge.
    keys = repository.INCIDENT_ORDER
    after = decode_cursor(cursor, keys) if cursor else None
    rows = await repository.page_incidents(session, status, after, limit + 1)
    timelines = await repository.timelines(session, [i.id for i in rows[:limit]])
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(keys, [last.opened_at, last.id]) if last else None
    return Page(
        items=[incident_out(i, timelines[i.id]) for i in rows[:limit]],
        total=await repository.count_incidents(session, status),
        next_cursor=next_cursor,
    )


async def incidents_overlapping(
    session: AsyncSession, since: datetime, limit: int = 12
) -> list[Incident]:
    """For a timeline of the period from `since`: each incident's span."""
    return await repository.incidents_overlapping(session, since, limit)


async def get_incident(session: AsyncSession, incident_id: uuid.UUID) -> IncidentOut:
    incident: Incident = await rows.require(session, Incident, incident_id, "incident")
    return incident_out(incident, (await repository.timelines(session, [incident.id]))[incident.id])


async def acknowledge(
    session: AsyncSession, ctx: OperationContext, incident_id: uuid.UUID
) -> IncidentOut:
    incident: Incident = await rows.require(session, Incident, incident_id, "incident")
    if incident.status != "open":
        raise Conflict("the incident is resolved; there is nothing to acknowledge")
    if incident.acknowledged_at is None:
        now = utcnow()
        incident.acknowledged_at = now
        incident.acknowledged_by = ctx.actor.username
        repository.add(
            session,
            IncidentEvent(
                incident_id=incident.id,
                at=now,
                kind="acknowledged",
                message=f"acknowledged by {ctx.actor.username}; reminders stop",
            ),
        )
        await audit.record(
            session,
            ctx,
            audit.Change(
                "incident.ack",
                "incident",
                incident.id,
                None,
                {"acknowledged_by": ctx.actor.username},
            ),
        )
        await session.flush()
    return await get_incident(session, incident.id)
